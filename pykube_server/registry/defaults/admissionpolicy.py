"""Scheme defaults of ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (v1).

kube's `SetDefaults_ValidatingAdmissionPolicySpec` makes `failurePolicy` Fail, and
`SetDefaults_MatchResources` gives every MatchResources (a policy's `matchConstraints`, a
binding's `matchResources` when it has one) `matchPolicy: Equivalent` and empty namespace and
object selectors; each rule's `scope` becomes `*`. `paramRef.parameterNotFoundAction` has no
default in v1 (validation requires it).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _match_resources(match: Any) -> None:
    if not isinstance(match, dict):
        return
    match.setdefault("matchPolicy", "Equivalent")
    match.setdefault("namespaceSelector", {})
    match.setdefault("objectSelector", {})
    for field in ("resourceRules", "excludeResourceRules"):
        for rule in match.get(field) or ():
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")


def default_validating_admission_policy(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("failurePolicy", "Fail")
    _match_resources(spec.get("matchConstraints"))


def default_validating_admission_policy_binding(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _match_resources(spec.get("matchResources"))
