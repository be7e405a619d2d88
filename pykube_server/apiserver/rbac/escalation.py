"""Privilege-escalation prevention on writes of Roles, ClusterRoles and their bindings.

Kubernetes lets a user create or update a role only with permissions the user already holds
(or with the `escalate` verb on it), and create a binding only to a role whose permissions the
user holds (or with the `bind` verb on it); members of `system:masters` are exempt. "Holds"
means the RBAC rules that apply to the user in the object's namespace, compared rule by rule
after breaking each requested rule into single (group, resource, name, verb) grants. A refusal
lists the missing grants, compacted, one per line:

    roles.rbac.authorization.k8s.io "r" is forbidden: user "alice" (groups=["g"]) is attempting
    to grant RBAC permissions not currently held:
    {APIGroups:[""], Resources:["pods"], Verbs:["create" "delete"]}
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pykube_server.api import errors
from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver.authz import PRIVILEGED_GROUP, Decision, RequestAttributes
from pykube_server.apiserver.rbac.authorizer import RBACAuthorizer
from pykube_server.apiserver.rbac.index import GROUP
from pykube_server.apiserver.rbac.rules import ALL

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer
    from pykube_server.apiserver.handlers.common import Call

Obj = dict[str, Any]
PLURALS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
AGGREGATION_MESSAGE = "must have cluster-admin privileges to use the aggregationRule"


# --- covering -----------------------------------------------------------------------------------


def breakdown(rule: Mapping[str, Any]) -> list[Obj]:
    """One rule as single grants: group x resource x name x verb, and url x verb."""
    out: list[Obj] = []
    verbs = rule.get("verbs") or []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            names = rule.get("resourceNames") or []
            for verb in verbs:
                if names:
                    out.extend({"apiGroups": [group], "resources": [resource], "resourceNames": [n], "verbs": [verb]}
                               for n in names)
                else:
                    out.append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})
    for url in rule.get("nonResourceURLs") or []:
        out.extend({"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs)
    return out


def _has_all(owner: Iterable[str], wanted: Iterable[str]) -> bool:
    have = set(owner)
    return ALL in have or set(wanted) <= have


def _resources_cover(owner: Iterable[str], wanted: Iterable[str]) -> bool:
    have = set(owner)
    if ALL in have:
        return True
    for resource in wanted:
        if resource in have:
            continue
        _, slash, sub = resource.partition("/")
        if slash and f"*/{sub}" in have:
            continue
        return False
    return True


def _urls_cover(owner: Iterable[str], wanted: Iterable[str]) -> bool:
    have = list(owner)
    for url in wanted:
        if not any(o == ALL or o == url or (o.endswith(ALL) and url.startswith(o[:-1])) for o in have):
            return False
    return True


def rule_covers(owner: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether `owner` grants everything `wanted` (one broken-down grant) asks for."""
    if not _has_all(owner.get("verbs") or [], wanted.get("verbs") or []):
        return False
    if wanted.get("nonResourceURLs"):
        return _urls_cover(owner.get("nonResourceURLs") or [], wanted["nonResourceURLs"])
    if not _has_all(owner.get("apiGroups") or [], wanted.get("apiGroups") or []):
        return False
    if not _resources_cover(owner.get("resources") or [], wanted.get("resources") or []):
        return False
    owner_names = owner.get("resourceNames") or []
    if not owner_names:
        return True
    wanted_names = wanted.get("resourceNames") or []
    return bool(wanted_names) and set(wanted_names) <= set(owner_names)


def covers(owner_rules: Iterable[Mapping[str, Any]], wanted_rules: Iterable[Mapping[str, Any]]) -> tuple[bool, list[Obj]]:
    """(all covered, the broken-down grants that are not)."""
    owners = list(owner_rules)
    missing = [grant for rule in wanted_rules for grant in breakdown(rule)
               if not any(rule_covers(owner, grant) for owner in owners)]
    return not missing, missing


def compact(rules: list[Obj]) -> list[Obj]:
    """Merge single-resource grants of the same group and resource into one rule (kube's
    CompactRules): their verbs accumulate in order."""
    merged: dict[tuple[str, str], Obj] = {}
    out: list[Obj] = []
    for rule in rules:
        simple = (len(rule.get("apiGroups") or []) == 1 and len(rule.get("resources") or []) == 1
                  and not rule.get("resourceNames") and not rule.get("nonResourceURLs"))
        if not simple:
            out.append(rule)
            continue
        key = (rule["apiGroups"][0], rule["resources"][0])
        if key in merged:
            verbs = merged[key]["verbs"]
            verbs.extend(v for v in rule["verbs"] if v not in verbs)
        else:
            merged[key] = {"apiGroups": [key[0]], "resources": [key[1]], "verbs": list(rule["verbs"])}
            out.append(merged[key])
    return out


def _go_list(values: Iterable[str]) -> str:
    """Go's %q of a []string: `["a" "b"]`."""
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"


def compact_string(rule: Mapping[str, Any]) -> str:
    """`{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`: kube's CompactString."""
    parts = []
    for field, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("resourceNames", "ResourceNames"),
                         ("nonResourceURLs", "NonResourceURLs"), ("verbs", "Verbs")):
        if rule.get(field):
            parts.append(f"{label}:{_go_list(rule[field])}")
    return "{" + ", ".join(parts) + "}"


def not_held_message(user: UserInfo, missing: list[Obj], resolution_errors: list[str]) -> str:
    lines = sorted(compact_string(rule) for rule in compact(missing))
    message = (f'user "{user.username}" (groups={_go_list(user.groups)}) is attempting to grant RBAC permissions '
               f"not currently held:\n" + "\n".join(lines))
    if resolution_errors:
        message += f"; resolution errors: [{', '.join(resolution_errors)}]"
    return message


# --- the checks ---------------------------------------------------------------------------------


def _forbidden(plural: str, name: str, message: str) -> errors.Forbidden:
    return errors.Forbidden(f'{plural}.{GROUP} "{name}" is forbidden: {message}',
                            details={"name": name, "group": GROUP, "kind": plural})


class EscalationCheck:
    """Applied to the object a create/update/patch of an RBAC kind would store."""

    def __init__(self, server: APIServer, rbac: RBACAuthorizer | None) -> None:
        self.server = server
        self.rbac = rbac

    async def _authorized(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        decision, _ = await self.server.authorizer.authorize(RequestAttributes(
            user=user, verb=verb, namespace=namespace, api_group=GROUP, api_version="v1", resource=resource,
            name=name, resource_request=True))
        return decision == Decision.ALLOW

    def _confirm_no_escalation(self, user: UserInfo, plural: str, name: str, namespace: str, rules: list[Obj]) -> None:
        held = self.rbac.rules_for(user, namespace) if self.rbac is not None else None
        owner = [rule.to_dict() for rule in held.rules] if held is not None else []
        ok, missing = covers(owner, rules)
        if not ok:
            raise _forbidden(plural, name, not_held_message(user, missing, held.errors if held is not None else []))

    async def check_request(self, call: Call, user: UserInfo) -> None:
        """Run `check` on the object a create/update/patch request would write."""
        if PRIVILEGED_GROUP in user.groups or call.spec.plural not in PLURALS:
            return
        new, old = await _requested_object(call)
        if new is not None:
            await self.check(user, call.spec.plural, new, old)

    async def check(self, user: UserInfo, plural: str, obj: Obj, old: Obj | None) -> None:
        if PRIVILEGED_GROUP in user.groups:
            return
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name", ""), meta.get("namespace", "")
        if plural in ("roles", "clusterroles"):
            await self._check_role(user, plural, name, namespace, obj, old)
        elif plural in ("rolebindings", "clusterrolebindings"):
            await self._check_binding(user, plural, name, namespace if plural == "rolebindings" else "", obj, old)

    async def _check_role(self, user: UserInfo, plural: str, name: str, namespace: str, obj: Obj, old: Obj | None) -> None:
        if await self._authorized(user, "escalate", plural, namespace, name):
            return
        if old is not None and only_gc_fields(obj, old):
            return
        self._confirm_no_escalation(user, plural, name, namespace, obj.get("rules") or [])
        if plural == "clusterroles" and (obj.get("aggregationRule") or (old or {}).get("aggregationRule")):
            # An aggregation rule can gather anything, so it takes * on everything.
            held = self.rbac.rules_for(user, "") if self.rbac is not None else None
            if not covers([r.to_dict() for r in held.rules] if held else [], FULL_AUTHORITY)[0]:
                raise _forbidden(plural, name, AGGREGATION_MESSAGE)

    async def _check_binding(self, user: UserInfo, plural: str, name: str, namespace: str, obj: Obj, old: Obj | None) -> None:
        if old is not None and only_gc_fields(obj, old):
            return
        ref = obj.get("roleRef") or {}
        role_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        if await self._authorized(user, "bind", role_plural, namespace, ref.get("name", "")):
            return
        policy = self.rbac.policy() if self.rbac is not None else None
        if role_plural == "clusterroles":
            rules = policy.cluster_roles.get(ref.get("name", "")) if policy is not None else None
        else:
            rules = policy.roles.get((namespace, ref.get("name", ""))) if policy is not None else None
        if rules is None:
            raise errors.NotFound.resource(role_plural, GROUP, ref.get("name", ""))
        self._confirm_no_escalation(user, plural, name, namespace, [rule.to_dict() for rule in rules])


FULL_AUTHORITY = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]
_GC_META = ("ownerReferences", "finalizers", "resourceVersion", "managedFields", "generation", "creationTimestamp",
            "uid", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def only_gc_fields(obj: Obj, old: Obj) -> bool:
    """kube's IsOnlyMutatingGCFields: an update that touches only ownerReferences and
    finalizers (and server-set metadata) grants nothing, so it is not checked."""
    def strip(o: Obj) -> Obj:
        out = {k: v for k, v in o.items() if k not in ("metadata", "apiVersion", "kind")}
        meta = o.get("metadata") or {}
        out["metadata"] = {k: v for k, v in meta.items() if k not in _GC_META and v not in (None, {}, [])}
        return out
    return strip(obj) == strip(old)


async def _requested_object(call: Call) -> tuple[Obj | None, Obj | None]:
    """(object the write would store, stored object) for a create, update or patch; (None, x)
    when the body cannot be read or patched (the handler then reports that error itself)."""
    from pykube_server.api.patch import PatchError, apply_merge_patch
    from pykube_server.apiserver.handlers.write import patcher
    from pykube_server.apiserver.negotiation import content_type_of, decode_body

    info = call.info
    media = content_type_of(call.request.headers.get("Content-Type"))
    try:
        body = decode_body(await call.request.read(), media)
    except errors.StatusError:
        return None, None
    old: Obj | None = None
    if info.verb != "create" and info.name:
        try:
            old = (await call.store.get(call.namespace, info.name)).decode()
        except errors.NotFound:
            old = None
    if info.verb == "patch":
        if old is None:
            return None, None
        try:
            if media == "application/apply-patch+yaml":
                new = apply_merge_patch(copy.deepcopy(old), body)
            else:
                new = patcher(call, body, media)(copy.deepcopy(old))
        except (PatchError, errors.StatusError):
            return None, old
    else:
        new = body
    if not isinstance(new, dict):
        return None, old
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        meta = new["metadata"] = {}
    if call.spec.namespaced:
        meta["namespace"] = call.namespace
    if not meta.get("name"):
        meta["name"] = info.name or meta.get("generateName", "")
    return new, old

