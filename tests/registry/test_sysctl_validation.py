"""Pod sysctl name validation: kube's pattern and message, duplicates, and what is left to the kubelet."""

from __future__ import annotations

from pykube_server.api.fields import Path
from pykube_server.registry.kind_validation.sysctls import validate_sysctls


def _errs(*names: str) -> list:
    spec = {"securityContext": {"sysctls": [{"name": n, "value": "1"} for n in names]}}
    return validate_sysctls(spec, Path("spec"))


def test_invalid_names_are_reported_with_kube_message() -> None:
    errs = _errs("foo-", "kernel.shmmax", "safe-and-unsafe", "bar..", "kernel/shm_rmid_forced")
    assert [(e.field, e.bad_value) for e in errs] == [("spec.securityContext.sysctls[0].name", "foo-"),
                                                      ("spec.securityContext.sysctls[3].name", "bar..")]
    assert errs[0].detail == ("must have at most 253 characters and match regex "
                              r"([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?")


def test_duplicate_empty_and_too_long() -> None:
    errs = _errs("net.core.somaxconn", "net.core.somaxconn", "", "a" * 254)
    assert [e.field for e in errs] == ["spec.securityContext.sysctls[1].name", "spec.securityContext.sysctls[2].name",
                                       "spec.securityContext.sysctls[3].name"]
    assert [e.type for e in errs][0].endswith("Duplicate") and [e.type for e in errs][1].endswith("Required")
