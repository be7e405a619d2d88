"""The ValidatingAdmissionPolicies and their bindings in force, compiled, from the watch cache.

kube-apiserver keeps policies and bindings from informers and compiles each policy's CEL once
per version of the object; the same happens here: a policy is compiled again only when its cached
object changed (a new resourceVersion), and a request pays only for looking the cache up.
Bindings are grouped under the policy they name (`spec.policyName`); a binding naming no existing
policy does nothing. Policies are offered sorted by name, their bindings too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pykube_server.api import cel
from pykube_server.registry.kind_validation.admissionpolicy import variables_for

if TYPE_CHECKING:
    from pykube_server.registry.store import ResourceStore

Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"

Compiled = cel.Program | cel.CompileError


def _compile(expression: str, variables: tuple[str, ...]) -> Compiled:
    try:
        return cel.compile(expression, variables)
    except cel.CompileError as exc:
        return exc


@dataclass(slots=True)
class Validation:
    expression: str
    program: Compiled
    message: str
    message_program: Compiled | None
    reason: str


@dataclass(slots=True)
class CompiledPolicy:
    """One policy's spec with every expression compiled."""

    name: str
    spec: Obj
    failure_policy: str
    match_conditions: list[Obj]
    variables: list[tuple[str, str, Compiled]]
    validations: list[Validation]
    audit_annotations: list[tuple[str, str, Compiled]]
    uses_authorizer: bool

    @property
    def param_kind(self) -> Obj | None:
        kind = self.spec.get("paramKind")
        return kind if isinstance(kind, dict) else None


def compile_policy(policy: Obj) -> CompiledPolicy:
    spec = policy.get("spec") or {}
    names = variables_for(spec)
    message_names = variables_for(spec, authorizer=False)
    variables = [(str(v.get("name", "")), str(v.get("expression", "")), _compile(str(v.get("expression", "")), names))
                 for v in spec.get("variables") or () if isinstance(v, dict)]
    validations = []
    for v in spec.get("validations") or ():
        if not isinstance(v, dict):
            continue
        expression = str(v.get("expression", ""))
        message_expression = str(v.get("messageExpression") or "").strip()
        validations.append(Validation(
            expression, _compile(expression, names), str(v.get("message") or ""),
            _compile(message_expression, message_names) if message_expression else None, str(v.get("reason") or "")))
    audits = [(str(a.get("key", "")), str(a.get("valueExpression", "")),
               _compile(str(a.get("valueExpression", "")), names))
              for a in spec.get("auditAnnotations") or () if isinstance(a, dict)]
    conditions = [c for c in spec.get("matchConditions") or () if isinstance(c, dict)]
    texts = [e for _, e, _ in variables] + [v.expression for v in validations] + [e for _, e, _ in audits] + [
        str(c.get("expression", "")) for c in conditions]
    return CompiledPolicy(
        name=str((policy.get("metadata") or {}).get("name", "")), spec=spec,
        failure_policy=str(spec.get("failurePolicy") or "Fail"), match_conditions=conditions,
        variables=variables, validations=validations, audit_annotations=audits,
        uses_authorizer=any("authorizer" in t for t in texts))


class PolicySource:
    """Policies (compiled, cached per resourceVersion) with their bindings, from the cache."""

    def __init__(self, policies: ResourceStore, bindings: ResourceStore) -> None:
        self.policies = policies
        self.bindings = bindings
        self._compiled: dict[str, tuple[object, CompiledPolicy]] = {}
        self._decoded: dict[str, tuple[object, Obj]] = {}

    def _policies(self) -> dict[str, CompiledPolicy]:
        objects = self.policies.cacher.resource(self.policies.root).objects
        out: dict[str, CompiledPolicy] = {}
        for key, cached in objects.items():
            seen = self._compiled.get(key)
            if seen is None or seen[0] is not cached:
                seen = self._compiled[key] = (cached, compile_policy(cached.decode()))
            out[cached.name] = seen[1]
        for gone in set(self._compiled) - set(objects):
            del self._compiled[gone]
        return out

    def _bindings(self) -> list[Obj]:
        objects = self.bindings.cacher.resource(self.bindings.root).objects
        out = []
        for key, cached in objects.items():
            seen = self._decoded.get(key)
            if seen is None or seen[0] is not cached:
                seen = self._decoded[key] = (cached, cached.decode())
            out.append(seen[1])
        for gone in set(self._decoded) - set(objects):
            del self._decoded[gone]
        return out

    def hooks(self) -> list[tuple[CompiledPolicy, list[Obj]]]:
        """The policies that have at least one binding, by name, each with its bindings by name."""
        bindings = self._bindings()
        if not bindings:
            return []
        policies = self._policies()
        grouped: dict[str, list[Obj]] = {}
        for binding in bindings:
            name = str((binding.get("spec") or {}).get("policyName") or "")
            if name in policies:
                grouped.setdefault(name, []).append(binding)
        return [(policies[name], sorted(grouped[name], key=lambda b: str(b["metadata"].get("name", ""))))
                for name in sorted(grouped)]
