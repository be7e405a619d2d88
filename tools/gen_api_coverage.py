"""Writes docs/api-coverage.md from the resource table, so the coverage page cannot drift.

Run: `.venv/bin/python tools/gen_api_coverage.py`; `tests/test_docs.py` checks it is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pykube_server.registry.resources import RESOURCES
from pykube_server.registry.spec import ResourceSpec

DOC = Path(__file__).resolve().parent.parent / "docs" / "api-coverage.md"

SERVED_SUBRESOURCES = {"status", "scale", "binding", "log", "portforward", "exec", "attach", "finalize", "eviction", "token",
                       "ephemeralcontainers"}
COMPUTED = {"SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview",
            "SelfSubjectRulesReview", "SelfSubjectReview", "TokenReview"}
LATER = {
    "log": "kubelet", "exec": "kubelet", "attach": "kubelet", "portforward": "kubelet", "proxy": "kubelet/proxy",
    "eviction": "kubelet", "resize": "kubelet",
    "token": "security", "finalize": "controllers", "approval": "security",
}

HEADER = """# API coverage

Generated from `pykube_server/registry/resources.py` by `tools/gen_api_coverage.py`; do not edit
by hand. Every resource a Kubernetes 1.33 API server serves by default is listed, with the verbs
and subresources real discovery shows.

Status: **served** = stored and served with full REST semantics (get, list, watch, create,
update, patch, delete, deletecollection as listed); **computed** = answered from the request
(access and identity reviews, answered by the authorizers); **not yet** = listed in
discovery but answered 404/405 until the named component exists.

| resource | group/version | kind | scope | verbs | subresources | status |
|---|---|---|---|---|---|---|
"""


def status(spec: ResourceSpec) -> str:
    if spec.kind in COMPUTED:
        return "computed"
    if spec.kind == "ComponentStatus":
        return "not yet (lists are empty until component health is reported)"
    if spec.persisted:
        return "served"
    if (spec.group, spec.plural) == ("", "bindings"):
        return "served (sets spec.nodeName, as pods/binding)"
    return "not yet"


def subresources(spec: ResourceSpec) -> str:
    parts = []
    for sub in spec.subresources:
        if sub.name in SERVED_SUBRESOURCES:
            parts.append(f"{sub.name} (served)")
        else:
            parts.append(f"{sub.name} (not yet: {LATER.get(sub.name, 'later')})")
    return ", ".join(parts) or "-"


def render() -> str:
    rows = []
    for spec in RESOURCES:
        rows.append(
            f"| {spec.plural} | {spec.group_version} | {spec.kind} | "
            f"{'Namespaced' if spec.namespaced else 'Cluster'} | {', '.join(spec.verbs)} | "
            f"{subresources(spec)} | {status(spec)} |"
        )
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
