"""APIService (apiregistration.k8s.io/v1): the kube-aggregator's defaults and validation.

An APIService's name is not a DNS subdomain: it must be exactly `<spec.version>.<spec.group>`,
and the core group's is `v1.` (trailing dot, empty group), so the generic name rule would refuse
the objects every real cluster has. The aggregator's rules, with its messages: the name is a
path segment equal to version.group; only `v1` may have an empty group; group priority in
(0, 20000], version priority in (0, 1000]; a local APIService (no `spec.service`) may carry
neither `caBundle` nor `insecureSkipTLSVerify`; a service reference needs namespace, name and a
valid port (defaulted to 443), and `insecureSkipTLSVerify` excludes `caBundle`.
"""

from __future__ import annotations

from typing import Any

from pykube_server.api.fields import FieldError, Path, invalid, required
from pykube_server.registry.kind_validation.common import is_valid_port_num
from pykube_server.registry.strategy import Strategy
from pykube_server.registry.validation import is_dns1035_label, is_dns1123_subdomain, validate_path_segment_name

Obj = dict[str, Any]
DEFAULT_SERVICE_PORT = 443


class APIServiceStrategy(Strategy):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._name_rule = validate_path_segment_name  # version.group is checked against the spec below

    def default(self, obj: Obj) -> None:
        super().default(obj)
        service = (obj.get("spec") or {}).get("service")
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = DEFAULT_SERVICE_PORT

    def validate(self, obj: Obj) -> list[FieldError]:
        errs = super().validate(obj)
        return errs + validate_apiservice(obj)


def validate_apiservice(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    spec_path = Path("spec")
    group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
    name = str((obj.get("metadata") or {}).get("name") or "")
    errs: list[FieldError] = []
    wanted = f"{version}.{group}"
    if name and not validate_path_segment_name(name, False) and name != wanted:
        errs.append(invalid(Path("metadata").child("name"), name, f'must be `spec.version+"."+spec.group`: "{wanted}"'))
    if not group and version != "v1":
        errs.append(required(spec_path.child("group"), "only v1 may have an empty group and it better be legacy kube"))
    if group:
        errs.extend(invalid(spec_path.child("group"), group, m) for m in is_dns1123_subdomain(group))
    errs.extend(invalid(spec_path.child("version"), version, m) for m in is_dns1035_label(version))
    group_priority = spec.get("groupPriorityMinimum")
    if not isinstance(group_priority, int) or not 0 < group_priority <= 20000:
        errs.append(invalid(spec_path.child("groupPriorityMinimum"), group_priority or 0,
                            "must be positive and less than 20000"))
    version_priority = spec.get("versionPriority")
    if not isinstance(version_priority, int) or not 0 < version_priority <= 1000:
        errs.append(invalid(spec_path.child("versionPriority"), version_priority or 0,
                            "must be positive and less than 1000"))
    service = spec.get("service")
    if not isinstance(service, dict):
        if spec.get("caBundle"):
            errs.append(invalid(spec_path.child("caBundle"), spec["caBundle"], "local APIServices may not have a caBundle"))
        if spec.get("insecureSkipTLSVerify"):
            errs.append(invalid(spec_path.child("insecureSkipTLSVerify"), True,
                                "local APIServices may not have insecureSkipTLSVerify"))
        return errs
    service_path = spec_path.child("service")
    if not service.get("namespace"):
        errs.append(required(service_path.child("namespace"), ""))
    if not service.get("name"):
        errs.append(required(service_path.child("name"), ""))
    errs.extend(invalid(service_path.child("port"), service.get("port"), m)
                for m in is_valid_port_num(service.get("port")))
    if spec.get("insecureSkipTLSVerify") and spec.get("caBundle"):
        errs.append(invalid(spec_path.child("insecureSkipTLSVerify"), True, "may not be true if caBundle is present"))
    return errs
