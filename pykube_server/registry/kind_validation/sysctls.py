"""Pod sysctl names (`spec.securityContext.sysctls`), validated as kube-apiserver does.

A sysctl name is dot- (or slash-) separated segments of lower-case letters, digits, `-` and `_`,
at most 253 characters; names may not repeat. Whether the node allows a sysctl is the kubelet's
business (it rejects unsafe ones at admission), not the API server's, so `kernel.shmmax` passes here.
"""

from __future__ import annotations

import re
from typing import Any

from pykube_server.api.fields import FieldError, Path, duplicate, invalid, required

SEGMENT = r"[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
SYSCTL_FMT = "(" + SEGMENT + r"[\./])*" + SEGMENT
MAX_LENGTH = 253
_NAME = re.compile("^" + SYSCTL_FMT + "$")


def is_valid_sysctl_name(name: str) -> bool:
    return len(name) <= MAX_LENGTH and _NAME.match(name) is not None


def validate_sysctls(spec: dict[str, Any], path: Path) -> list[FieldError]:
    """`path` is the pod spec's; errors sit at `securityContext.sysctls[i].name`."""
    context = spec.get("securityContext")
    sysctls = context.get("sysctls") if isinstance(context, dict) else None
    if not isinstance(sysctls, list):
        return []
    errs: list[FieldError] = []
    seen: set[str] = set()
    base = path.child("securityContext").child("sysctls")
    for i, sysctl in enumerate(sysctls):
        name = sysctl.get("name") if isinstance(sysctl, dict) else None
        where = base.index(i).child("name")
        if not name:
            errs.append(required(where))
        elif not isinstance(name, str) or not is_valid_sysctl_name(name):
            errs.append(invalid(where, name, f"must have at most {MAX_LENGTH} characters and match regex {SYSCTL_FMT}"))
        elif name in seen:
            errs.append(duplicate(where, name))
        if isinstance(name, str):
            seen.add(name)
    return errs
