"""metadata.managedFields and server-side apply (structured-merge-diff semantics).

`fieldpath` holds paths, sets and the FieldsV1 form; `typed` walks objects with their OpenAPI
schema (field sets, compare, merge, removal); `zero` knows kube's empty objects; `manager`
keeps the entries and implements `Update` and `Apply`.
"""

from __future__ import annotations

from pykube_server.registry.managedfields.manager import (
    BEFORE_FIRST_APPLY,
    Entry,
    Kind,
    ManagedHook,
    apply,
    conflict_error,
    decode,
    encode,
    keep_hook,
    manager_from_user_agent,
    update_hook,
    update_managed_fields,
)

__all__ = ["BEFORE_FIRST_APPLY", "Entry", "Kind", "ManagedHook", "apply", "conflict_error", "decode", "encode",
           "keep_hook", "manager_from_user_agent", "update_hook", "update_managed_fields"]
