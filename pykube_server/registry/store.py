"""ResourceStore: the one generic REST store, shared by every kind.

It owns the Kubernetes semantics of each verb (uid, resourceVersion, generation,
creationTimestamp, generateName, preconditions, finalizers and deletionTimestamp, the status
split, resourceVersion/resourceVersionMatch rules, consistent pagination) and asks the kind's
Strategy for what differs. It knows nothing of HTTP: it takes dicts and raises
`api.errors.StatusError`s; storage errors are translated here, naming the resource.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import copy
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from pykube_server.api import errors
from pykube_server.api.fields import FieldError, invalid
from pykube_server.api.selectors import SelectorError, parse_field_selector, parse_label_selector
from pykube_server.api.uid import new_uid
from pykube_server.registry.defaults import default_status
from pykube_server.registry.managedfields import ManagedHook
from pykube_server.registry.spec import ResourceSpec
from pykube_server.registry.strategy import StatusStrategy, Strategy, now_rfc3339, parse_time, status_metadata_rule
from pykube_server.storage.backend import Compacted, KeyExists, KeyNotFound
from pykube_server.storage.cacher import CachedObject, Cacher, Trigger, Watcher
from pykube_server.storage.store import Store

Obj = dict[str, Any]
Transform = Callable[[Obj | None], Awaitable[Obj]]


class Admission(Protocol):
    """The request's admission chain, as the store calls it (`apiserver.admission.RequestAdmission`).

    `mutate` runs before the kind's defaulting and validation, `validate` after them, both
    inside the compare-and-swap for updates and deletes (`obj` is None for a delete)."""

    async def mutate(self, obj: Obj, old: Obj | None, operation: str | None = None) -> None: ...

    async def validate(self, obj: Obj | None, old: Obj | None, operation: str | None = None) -> None: ...

TOO_LARGE_RV_WAIT_SECONDS = 3.0
NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# kube-apiserver's texts for history that compaction removed (storage/etcd3 errors).
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)
LIST_EXPIRED = "The resourceVersion for the provided list is too old."
LATEST = -1
"""A continue token's revision meaning "go on at the newest state" (offered after compaction)."""
# Kinds whose PUT may create the object (AllowCreateOnUpdate in their strategies).
CREATE_ON_UPDATE = {
    ("", "events"), ("events.k8s.io", "events"), ("", "endpoints"), ("coordination.k8s.io", "leases"),
    ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "rolebindings"), ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("", "limitranges"), ("apiregistration.k8s.io", "apiservices"),
}
# Kinds whose DELETE answers with the deleted object rather than a Success Status (their stores'
# ReturnDeletedObject; the OpenAPI, and so the generated clients, type their DELETE reply as the kind).
RETURNS_DELETED_OBJECT = {("", "pods"), ("", "services"), ("", "serviceaccounts"), ("", "resourcequotas"),
                          ("", "podtemplates"), ("", "persistentvolumes"), ("", "persistentvolumeclaims"),
                          ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "volumeattachments"),
                          ("storage.k8s.io", "csinodes"), ("storage.k8s.io", "csidrivers"),
                          ("storage.k8s.io", "volumeattributesclasses"),
                          ("resource.k8s.io", "deviceclasses"), ("resource.k8s.io", "resourceclaims"),
                          ("resource.k8s.io", "resourceclaimtemplates"), ("resource.k8s.io", "resourceslices")}
# The garbage collector's finalizers, set on DELETE from the propagation policy (generic store's
# deletionFinalizersForGarbageCollection); the garbage-collector-controller removes them.
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
# Kinds whose DELETE orphans dependents unless told otherwise (their strategies'
# DefaultGarbageCollectionPolicy, kept for backwards compatibility); all others: Background.
ORPHAN_BY_DEFAULT = {("", "v1", "replicationcontrollers"), ("batch", "v1", "jobs")}
NAMESPACE_FINALIZING = ("The system is ensuring all content is removed from this namespace.  Upon completion, "
                        "this namespace will automatically be purged by the system.")


@dataclass(slots=True)
class ListResult:
    items: list[CachedObject]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


@dataclass(slots=True)
class DeleteResult:
    obj: Obj
    deleted: bool
    """False when the object stays (finalizers, graceful deletion)."""


def encode_continue(revision: int, start: str) -> str:
    body = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


class ExpiredContinue(errors.Gone):
    """410 Expired whose Status carries a token to continue, inconsistently, at the newest state."""

    def __init__(self, token: str) -> None:
        super().__init__(CONTINUE_EXPIRED)
        self.token = token

    def status(self) -> dict[str, Any]:
        body = super().status()
        body["metadata"] = {"continue": self.token}
        return body


def decode_continue(token: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded))
        if body.get("v") != "meta.k8s.io/v1":
            raise ValueError
        return int(body["rv"]), str(body["start"])
    except Exception as exc:
        raise errors.BadRequest(f"continue key is not valid: {exc or 'incorrect encoded start resourceVersion (version meta.k8s.io/v1)'}") from exc


def parse_rv(value: str, what: str = "resourceVersion") -> int:
    try:
        rv = int(value)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise errors.BadRequest(f'invalid {what} "{value}"') from None


class ResourceStore:
    def __init__(self, spec: ResourceSpec, strategy: Strategy, store: Store, cacher: Cacher, namespaces_root: str,
                 *, root: str = "", custom: bool = False) -> None:
        self.spec = spec
        self.strategy = strategy
        self.status_strategy = StatusStrategy(strategy, status_metadata_rule(spec.group, spec.plural, custom=custom))
        self.store = store
        self.cacher = cacher
        self.root = root or spec.key_root
        self._namespaces_root = namespaces_root

    # -- keys and errors ----------------------------------------------------------------
    def key(self, namespace: str, name: str) -> str:
        return f"{self.root}/{namespace}/{name}" if self.spec.namespaced else f"{self.root}/{name}"

    def not_found(self, name: str) -> errors.NotFound:
        return errors.NotFound.resource(self.spec.plural, self.spec.group, name)

    def conflict(self, name: str, detail: str = "") -> errors.Conflict:
        return errors.Conflict.resource(self.spec.plural, self.spec.group, name, detail)

    def invalid(self, name: str, errs: list[FieldError]) -> errors.Invalid:
        return errors.Invalid.from_errors(self.spec.kind, self.spec.group, name, errs)

    # -- selectors ----------------------------------------------------------------------
    def matcher(self, label_selector: str, field_selector: str) -> Callable[[CachedObject], bool]:
        return self.matcher_and_trigger(label_selector, field_selector)[0]

    def matcher_and_trigger(
        self, label_selector: str, field_selector: str
    ) -> tuple[Callable[[CachedObject], bool], Trigger | None]:
        """The selectors' matcher, and the exact field value a watch can be indexed under (the
        first `field=value` term: a node name, an object name), as kube's watch cache indexes
        watchers by their trigger value."""
        try:
            labels = parse_label_selector(label_selector or "")
            fields = parse_field_selector(field_selector or "")
        except SelectorError as exc:
            raise errors.BadRequest(str(exc)) from exc
        try:
            supported, aliases = self.field_labels()
            fields = fields.validate_fields(supported, aliases=aliases)
        except SelectorError as exc:
            raise errors.BadRequest(str(exc)) from exc
        if labels.empty and fields.empty:
            return match_all, None
        if fields.empty:
            return (lambda obj: labels.matches(obj.labels)), None
        trigger = next(((r.field, r.value) for r in fields.requirements if r.operator == "="), None)

        def match(obj: CachedObject) -> bool:
            values = {"metadata.name": obj.name, "metadata.namespace": obj.namespace, **obj.fields}
            return labels.matches(obj.labels) and fields.matches(values)

        return match, trigger

    def field_labels(self) -> tuple[set[str] | None, Mapping[str, str] | None]:
        """The field selector labels this resource accepts (None: only metadata's) and the ones
        renamed before matching (kube's field label conversion; a resource served over another's
        storage renames to the stored kind's labels, see `registry/sharedstorage.py`)."""
        supported = self.strategy.supported_fields() if self.strategy.selectable else None
        aliases = {"spec.host": "spec.nodeName"} if (self.spec.group, self.spec.plural) == ("", "pods") else None
        return supported, aliases

    # -- reads --------------------------------------------------------------------------
    async def _wait_not_older_than(self, rv: int) -> None:
        try:
            async with asyncio.timeout(TOO_LARGE_RV_WAIT_SECONDS):
                await self.cacher.wait_for_revision(rv)
        except TimeoutError:
            raise errors.Timeout(
                f"Too large resource version: {rv}, current: {self.cacher.revision}",
                details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                         "retryAfterSeconds": 1},
            ) from None

    async def get(self, namespace: str, name: str, *, resource_version: str = "") -> CachedObject:
        if resource_version == "":
            await self.cacher.wait_fresh()
        elif resource_version != "0":
            await self._wait_not_older_than(parse_rv(resource_version))
        obj = self.cacher.resource(self.root).objects.get(self.key(namespace, name))
        if obj is None:
            raise self.not_found(name)
        return obj

    async def list(
        self,
        namespace: str,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListResult:
        matcher = self.matcher(label_selector, field_selector)
        prefix = f"{self.root}/{namespace}/" if namespace else f"{self.root}/"
        if continue_token:
            if resource_version not in ("", "0"):
                raise errors.BadRequest("specifying resource version is not allowed when using continue")
            revision, start = decode_continue(continue_token)
            if revision == LATEST:
                revision = await self.store.backend.current_revision()
            elif revision <= 0:
                raise errors.BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            return await self._list_at(prefix, revision, matcher, limit, after=prefix + start)
        if resource_version_match and resource_version == "":
            raise errors.BadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
        exact = resource_version_match == "Exact" or (
            limit > 0 and resource_version not in ("", "0") and not resource_version_match
        )
        if resource_version_match not in ("", "Exact", "NotOlderThan"):
            raise errors.BadRequest(f'resourceVersionMatch "{resource_version_match}" is not supported')
        if exact:
            if resource_version == "0":
                raise errors.BadRequest('resourceVersionMatch "Exact" is forbidden for resourceVersion "0"')
            revision = parse_rv(resource_version)
            await self._wait_not_older_than(revision)
            if revision != self.cacher.revision:
                return await self._list_at(prefix, revision, matcher, limit, after="")
        elif resource_version == "":
            await self.cacher.wait_fresh()
        elif resource_version != "0":
            await self._wait_not_older_than(parse_rv(resource_version))
        return self._list_cached(prefix, matcher, limit)

    def _list_cached(self, prefix: str, matcher: Callable[[CachedObject], bool], limit: int) -> ListResult:
        res = self.cacher.resource(self.root)
        revision = self.cacher.revision
        keys = res.sorted_keys()
        objects = res.objects
        items: list[CachedObject] = []
        start = _bisect_prefix(keys, prefix)
        i = start
        for i in range(start, len(keys)):
            key = keys[i]
            if not key.startswith(prefix):
                break
            obj = objects[key]
            if matcher(obj):
                if limit and len(items) == limit:
                    # Like kube-apiserver: the count is only known (and sent) without selectors.
                    remaining = _count_prefix(keys, i, prefix) if matcher is match_all else None
                    token = encode_continue(revision, items[-1].key[len(prefix):] + "\x00")
                    return ListResult(items, str(revision), token, remaining)
                items.append(obj)
        return ListResult(items, str(revision))

    async def _list_at(
        self, prefix: str, revision: int, matcher: Callable[[CachedObject], bool], limit: int, *, after: str
    ) -> ListResult:
        """A page as of an older revision, read from the backend's history."""
        items: list[CachedObject] = []
        cursor = after
        try:
            while True:
                page = await self.store.backend.scan(prefix, revision=revision, after=cursor, limit=max(limit, 500) if limit else 0)
                for kv in page.items:
                    cursor = kv.key
                    obj = self.cacher.cached_from(self.root, kv)
                    if not matcher(obj):
                        continue
                    if limit and len(items) == limit:
                        remaining = None
                        if matcher is match_all:
                            rest = await self.store.backend.scan(prefix, revision=revision, after=items[-1].key)
                            remaining = len(rest.items)
                        token = encode_continue(revision, items[-1].key[len(prefix):] + "\x00")
                        return ListResult(items, str(revision), token, remaining)
                    items.append(obj)
                if not page.more or not limit:
                    return ListResult(items, str(revision))
        except Compacted:
            if after:
                raise ExpiredContinue(encode_continue(LATEST, after[len(prefix):])) from None
            raise errors.Gone(LIST_EXPIRED) from None

    # -- writes -------------------------------------------------------------------------
    async def _check_namespace(self, namespace: str, name: str) -> None:
        """kube's NamespaceLifecycle: the namespace must exist and not be terminating. Like
        kube's, it reads the cache and looks further (here: waits for the cache to catch up
        with storage) only when the namespace is not there, so a create never waits for the
        watch cache when its namespace is known."""
        if not self.spec.namespaced:
            return
        key = f"{self._namespaces_root}/{namespace}"
        ns = self.cacher.resource(self._namespaces_root).objects.get(key)
        if ns is None:
            await self.cacher.wait_fresh()
            ns = self.cacher.resource(self._namespaces_root).objects.get(key)
        if ns is None:
            raise errors.NotFound.resource("namespaces", "", namespace)
        if ns.fields.get("status.phase") == "Terminating":
            raise errors.Forbidden(
                f'{self._qualified()} "{name}" is forbidden: unable to create new content in namespace {namespace} because it is being terminated',
                details={"name": name, **({"group": self.spec.group} if self.spec.group else {}), "kind": self.spec.plural,
                         "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated", "field": "metadata.namespace"}]},
            )

    def _qualified(self) -> str:
        return errors.qualified_resource(self.spec.plural, self.spec.group)

    async def create(self, namespace: str, obj: Obj, *, dry_run: bool = False, managed: ManagedHook | None = None,
                     admission: Admission | None = None) -> Obj:
        """`managed(None, obj)` records managedFields once the object is final (None: untracked);
        `admission` is the request's admission chain (None: internal writes, not admitted)."""
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        if self.spec.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choice(NAME_SUFFIX_ALPHABET) for _ in range(5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        if meta.get("resourceVersion"):
            raise errors.InternalError("resourceVersion should not be set on objects to be created")
        name = meta.get("name", "")
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(field, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("generation", None)
        self.strategy.prepare_for_create(obj)
        self.strategy.default(obj)
        await self._check_namespace(namespace, name)  # NamespaceLifecycle comes first in kube's chain
        if admission is not None:
            await admission.mutate(obj, None, "CREATE")
        errs = self.strategy.validate(obj)
        if errs:
            raise self.invalid(name, errs)
        if admission is not None:
            await admission.validate(obj, None, "CREATE")
        self.strategy.canonicalize(obj)
        if managed is not None:
            managed(None, obj)
        if dry_run:
            await self.cacher.wait_fresh()
            if self.key(namespace, name) in self.cacher.resource(self.root).objects:
                raise errors.AlreadyExists.resource(self.spec.plural, self.spec.group, name)
            return obj
        try:
            return await self.store.create(self.key(namespace, name), obj)
        except KeyExists:
            if meta.get("generateName") and name.startswith(meta["generateName"]):
                raise errors.AlreadyExists(
                    f'{self._qualified()} "{name}" already exists, the server was not able to generate a unique name for the object',
                    details={"name": name, "kind": self.spec.plural},
                ) from None
            raise errors.AlreadyExists.resource(self.spec.plural, self.spec.group, name) from None

    async def update(
        self,
        namespace: str,
        name: str,
        transform: Transform,
        *,
        subresource: str = "",
        dry_run: bool = False,
        force_allow_create: bool = False,
        managed: ManagedHook | None = None,
        admission: Admission | None = None,
    ) -> tuple[Obj, bool]:
        """Read-modify-write: `transform(current copy or None)` returns the new body (a PUT
        returns the request body; a PATCH applies the patch). Returns (object, created).
        `managed(current, new)` records managedFields on the prepared object, before the no-op
        check, so a write that changes nothing keeps its resourceVersion."""
        key = self.key(namespace, name)
        status = subresource == "status"
        created = False

        async def apply(current: Obj | None, revision: int) -> tuple[Obj | None, str]:
            nonlocal created
            body = await transform(copy.deepcopy(current) if current is not None else None)
            meta = body.setdefault("metadata", {})
            expected = meta.get("resourceVersion") or ""
            if current is None:
                allowed = (self.spec.group, self.spec.plural) in CREATE_ON_UPDATE or force_allow_create
                if not allowed or subresource:
                    raise self.not_found(name)
                meta.pop("resourceVersion", None)
                obj = await self.create(namespace, body, dry_run=True, managed=managed, admission=admission)
                created = True
                return obj, "none" if dry_run else "create"
            if expected and expected != str(revision):
                raise self.conflict(name)
            if meta.get("uid") and meta["uid"] != current["metadata"].get("uid"):
                raise self.conflict(name, f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {current['metadata'].get('uid')}")
            if admission is not None:
                await admission.mutate(body, current, "UPDATE")
            obj = self._prepare_update(body, current, status=status, finalize=subresource == "finalize",
                                       subresource=subresource)
            if admission is not None:
                await admission.validate(obj, current, "UPDATE")
            if managed is not None:
                managed(current, obj)
            if _same(obj, current):  # "unchanged": storage may still rewrite it (a stale encryption key)
                return current, "none" if dry_run else "unchanged"
            meta = obj["metadata"]
            if meta.get("deletionTimestamp") and not self._finalizers(obj) and meta.get("deletionGracePeriodSeconds") in (None, 0):
                return obj, "none" if dry_run else "delete"
            return obj, "none" if dry_run else "update"

        await self.cacher.wait_fresh()
        try:
            obj, action = await self.store.guaranteed_update(key, self.root, apply)
        except KeyNotFound:
            raise self.not_found(name) from None
        if created and not dry_run:
            await self._check_namespace(namespace, name)
        return obj or {}, created

    async def bind(self, namespace: str, binding: Obj, *, dry_run: bool = False) -> None:
        """`pods/binding` (and the legacy `bindings`): set spec.nodeName, the PodScheduled=True
        condition and the Binding's annotations in one compare-and-swap, as kube's BindingREST
        does. Refusals are 409s on `pods/binding`, with BindingREST's texts."""
        meta = binding.get("metadata") or {}
        name, node = meta.get("name", ""), (binding.get("target") or {}).get("name", "")
        if (binding.get("target") or {}).get("kind", "Node") not in ("", "Node"):
            raise errors.InternalError("target.kind: Invalid value: " f'"{binding["target"]["kind"]}": must be empty or \'Node\'')
        if not node:
            raise errors.InternalError("target.name: Required value")
        refused = lambda detail: errors.Conflict.resource("pods/binding", "", name, detail)  # noqa: E731

        async def apply(current: Obj | None, revision: int) -> tuple[Obj | None, str]:
            if current is None:
                raise self.not_found(name)
            pod_meta, spec = current["metadata"], current.setdefault("spec", {})
            if meta.get("uid") and meta["uid"] != pod_meta.get("uid"):
                raise self.conflict(name, f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {pod_meta.get('uid')}")
            if pod_meta.get("deletionTimestamp"):
                raise refused(f"pod {name} is being deleted, cannot be assigned to a host")
            if spec.get("nodeName"):
                raise refused(f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            if spec.get("schedulingGates"):
                raise refused(f"pod {name} has non-empty .spec.schedulingGates")
            spec["nodeName"] = node
            if meta.get("annotations"):
                pod_meta.setdefault("annotations", {}).update(meta["annotations"])
            _set_scheduled_condition(current.setdefault("status", {}))
            return current, "none" if dry_run else "update"

        await self.cacher.wait_fresh()
        try:
            await self.store.guaranteed_update(self.key(namespace, name), self.root, apply)
        except KeyNotFound:
            raise self.not_found(name) from None

    def _prepare_update(self, body: Obj, current: Obj, *, status: bool, finalize: bool = False,
                        subresource: str = "") -> Obj:
        if finalize:  # namespaces/finalize: spec.finalizers (and metadata) may change, nothing else
            finalizers = (body.get("spec") or {}).get("finalizers")
            body.update({k: copy.deepcopy(v) for k, v in current.items() if k != "metadata"})
            spec = body.setdefault("spec", {})
            if finalizers:
                spec["finalizers"] = finalizers
            else:
                spec.pop("finalizers", None)
        meta = body["metadata"]
        old_meta = current["metadata"]
        if meta.get("name") and meta["name"] != old_meta["name"]:  # a patch may try to rename
            raise self.invalid(meta["name"], [invalid("metadata.name", meta["name"], "field is immutable")])
        if self.spec.namespaced:
            meta["namespace"] = old_meta.get("namespace")
        meta["name"] = old_meta["name"]
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta.pop("selfLink", None)
        strategy = self.status_strategy if status else (self.strategy.for_subresource(subresource) or self.strategy)
        strategy.prepare_for_update(body, current)
        if not status and not finalize:  # (the namespace default would put `kubernetes` back)
            self.strategy.default(body)
        elif status:
            default_status(self.spec.group, self.spec.kind, body)
        errs = strategy.validate_update(body, current)
        if errs:
            raise self.invalid(old_meta["name"], errs)
        self.strategy.canonicalize(body)
        return body

    async def delete(self, namespace: str, name: str, options: Obj, *, dry_run: bool = False,
                     admission: Admission | None = None) -> DeleteResult:
        key = self.key(namespace, name)
        preconditions = options.get("preconditions") or {}
        grace = options.get("gracePeriodSeconds")
        outcome = {"deleted": False}

        async def apply(current: Obj | None, revision: int) -> tuple[Obj | None, str]:
            if current is None:
                raise self.not_found(name)
            meta = current["metadata"]
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise self.conflict(name, f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {meta.get('uid')}")
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != str(revision):
                raise self.conflict(name, f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, ResourceVersion in object meta: {revision}")
            if admission is not None:
                await admission.validate(None, current, "DELETE")
            if self._is_namespace():
                return self._delete_namespace(current, options, dry_run=dry_run, outcome=outcome)
            graceful = self._graceful_period(current, grace)
            pending = meta.get("deletionGracePeriodSeconds")
            if meta.get("deletionTimestamp") and graceful and pending and graceful >= int(pending):
                return current, "none"  # kube's BeforeDelete: only a shorter grace period changes anything
            # like kube, finalizers cannot change through DeleteOptions once graceful deletion began
            changed = not (meta.get("deletionTimestamp") and graceful) and self._set_gc_finalizers(current, options)
            if self._finalizers(current) or graceful:
                if meta.get("deletionTimestamp") and not graceful:
                    changed = self._shorten_to_zero(current, grace) or changed
                    return current, "update" if changed and not dry_run else "none"
                self._mark_deleting(current, graceful)
                return current, "none" if dry_run else "update"
            outcome["deleted"] = True
            return current, "none" if dry_run else "delete"

        await self.cacher.wait_fresh()
        try:
            obj, action = await self.store.guaranteed_update(key, self.root, apply)
        except KeyNotFound:
            raise self.not_found(name) from None
        return DeleteResult(obj or {}, outcome["deleted"])

    def _is_namespace(self) -> bool:
        return self.spec.plural == "namespaces" and not self.spec.group

    def _delete_namespace(self, current: Obj, options: Obj, *, dry_run: bool, outcome: dict[str, bool]) -> tuple[Obj | None, str]:
        """kube's namespace REST Delete: the first DELETE only marks the namespace Terminating (no
        grace period); while spec.finalizers remain, another DELETE is a 409; after that the
        generic rules apply."""
        meta = current["metadata"]
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = now_rfc3339()
            current.setdefault("status", {})["phase"] = "Terminating"
            self._set_gc_finalizers(current, options)
            return current, "none" if dry_run else "update"
        if (current.get("spec") or {}).get("finalizers"):
            raise self.conflict(meta["name"], NAMESPACE_FINALIZING)
        changed = self._set_gc_finalizers(current, options)
        if meta.get("finalizers"):
            meta["deletionGracePeriodSeconds"] = 0
            return current, "update" if changed and not dry_run else "none"
        outcome["deleted"] = True
        return current, "none" if dry_run else "delete"

    def _set_gc_finalizers(self, obj: Obj, options: Obj) -> bool:
        """Add or drop `orphan` / `foregroundDeletion` as the delete options (or the object's
        existing finalizers, or the kind's default) ask; True when the list changed."""
        meta = obj["metadata"]
        old = list(meta.get("finalizers") or [])
        new = [f for f in old if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
        if self._should_orphan(old, options):
            new.append(ORPHAN_FINALIZER)
        if self._should_delete_in_foreground(old, options):
            new.append(FOREGROUND_FINALIZER)
        if set(new) == set(old):
            return False
        if new:
            meta["finalizers"] = new
        else:
            meta.pop("finalizers", None)
        return True

    def _should_orphan(self, finalizers: list[str], options: Obj) -> bool:
        if options.get("orphanDependents") is not None:
            return bool(options["orphanDependents"])
        policy = options.get("propagationPolicy")
        if policy in ("Orphan", "Background", "Foreground"):
            return policy == "Orphan"
        for finalizer in finalizers:
            if finalizer in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER):
                return finalizer == ORPHAN_FINALIZER
        return (self.spec.group, self.spec.version, self.spec.plural) in ORPHAN_BY_DEFAULT

    @staticmethod
    def _should_delete_in_foreground(finalizers: list[str], options: Obj) -> bool:
        if options.get("orphanDependents") is not None:
            return False
        policy = options.get("propagationPolicy")
        if policy in ("Orphan", "Background", "Foreground"):
            return policy == "Foreground"
        for finalizer in finalizers:
            if finalizer in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER):
                return finalizer == FOREGROUND_FINALIZER
        return False

    def _finalizers(self, obj: Obj) -> list[str]:
        """What still holds the object: metadata.finalizers, and for a namespace also
        spec.finalizers (`kubernetes`, removed by the namespace controller through /finalize)."""
        held = list(obj["metadata"].get("finalizers") or [])
        if self.spec.plural == "namespaces" and not self.spec.group:
            held += (obj.get("spec") or {}).get("finalizers") or []
        return held

    def _graceful_period(self, current: Obj, requested: int | None) -> int:
        """Pods bound to a node wait for their kubelet; everything else goes at once."""
        if self.spec.plural != "pods" or self.spec.group:
            return 0
        if not (current.get("spec") or {}).get("nodeName"):
            return 0
        if requested is None:
            requested = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        phase = (current.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return 0
        return int(requested)

    @staticmethod
    def _shorten_to_zero(obj: Obj, requested: int | None) -> bool:
        """kube's BeforeDelete lets a later DELETE shorten a pending grace period: the kubelet's
        final `gracePeriodSeconds=0` on a pod still held by finalizers records grace 0 (and moves
        the deletionTimestamp back by the old grace), so the pod goes as soon as the last finalizer
        is removed instead of staying forever with its old grace period."""
        meta = obj["metadata"]
        old = meta.get("deletionGracePeriodSeconds")
        if requested is None or int(requested) != 0 or not old:
            return False
        meta["deletionGracePeriodSeconds"] = 0
        with contextlib.suppress(ValueError):
            when = parse_time(meta["deletionTimestamp"]) - int(old)
            meta["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        return True

    def _mark_deleting(self, obj: Obj, grace: int) -> None:
        meta = obj["metadata"]
        if self.spec.plural == "namespaces" and not self.spec.group:
            obj.setdefault("status", {})["phase"] = "Terminating"
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = now_rfc3339()
        meta["deletionGracePeriodSeconds"] = grace
        if self.strategy.tracks_generation:
            meta["generation"] = meta.get("generation", 1) + 1

    # -- watch --------------------------------------------------------------------------
    async def watch(
        self,
        namespace: str,
        *,
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        send_initial_events: bool | None = None,
    ) -> Watcher:
        """Raises Gone when `resource_version` is older than the kept event window."""
        matcher, trigger = self.matcher_and_trigger(label_selector, field_selector)
        if send_initial_events:
            since = None
            if resource_version not in ("", "0"):
                await self._wait_not_older_than(parse_rv(resource_version))
            elif resource_version == "":
                await self.cacher.wait_fresh()
        elif resource_version in ("", "0"):
            if resource_version == "":
                await self.cacher.wait_fresh()
            since = None
        else:
            since = parse_rv(resource_version)
        # The oldest revision a watch can resume after: the cache's event window, and nothing
        # older than the store's compaction (kube: "too old resource version: RV (oldest-1)").
        floor = max(self.cacher.resource(self.root).window_start,
                    int(getattr(self.store.backend, "compacted_revision", 0) or 0) - 1)
        if since is not None and since < floor:
            raise errors.Gone(f"too old resource version: {since} ({floor})")
        watcher = self.cacher.watch(self.root, namespace=namespace, matcher=matcher, since=since,
                                    trigger=trigger)
        if watcher is None:
            res = self.cacher.resource(self.root)
            raise errors.Gone(f"too old resource version: {since} ({res.window_start})")
        return watcher

    def stop_watch(self, watcher: Watcher) -> None:
        self.cacher.stop_watch(self.root, watcher)


def _same(obj: Obj, current: Obj) -> bool:
    """Equal but for the resourceVersion the client sent."""
    a = dict(obj)
    a["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    b = dict(current)
    b["metadata"] = {k: v for k, v in current["metadata"].items() if k != "resourceVersion"}
    return a == b


def match_all(obj: CachedObject) -> bool:
    """The matcher of a list without selectors."""
    return True


def _count_prefix(keys: list[str], start: int, prefix: str) -> int:
    """How many keys from `start` on share `prefix` (keys are sorted)."""
    return bisect.bisect_left(keys, prefix + "\U0010ffff", lo=start) - start


def _bisect_prefix(keys: list[str], prefix: str) -> int:
    return bisect.bisect_left(keys, prefix)


def _set_scheduled_condition(status: Obj) -> None:
    """podutil.UpdatePodCondition with PodScheduled=True: the condition is replaced, and its
    lastTransitionTime moves only when the status changes."""
    conditions = status.setdefault("conditions", [])
    old = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
    new = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
           "lastTransitionTime": old.get("lastTransitionTime") if old and old.get("status") == "True" else now_rfc3339()}
    if old is None:
        conditions.append(new)
    else:
        conditions[conditions.index(old)] = new
