"""Printers of the remaining built-in groups: networking, RBAC, storage, admission, certificates,
coordination, scheduling, node, discovery, flow control, API extension and registration, and
the review kinds.

Kinds kube-apiserver has no printer for (Roles, ClusterRoles, CRDs, review objects) use the
default table convertor's NAME and CREATED AT; APIServices use the aggregator's own table.
"""

from __future__ import annotations

from pykube_server.registry.printers.common import (
    AGE, DEFAULT_COLUMNS, NAME, NONE, UNSET, Cell, Column, Obj, col, condition, count, doc, field,
    get, human_duration, label_selector, list_with_more, wide,
)
from pykube_server.registry.printers.events import EVENTS_V1_COLUMNS


# -- networking ------------------------------------------------------------------------------

def ingress_hosts(o: Obj, now: float) -> str:
    """`formatHosts`: up to three rule hosts, `*` when none, then `+ N more...`."""
    rules = get(o, "spec", "rules", default=[])
    hosts: list[str] = []
    more = False
    for rule in rules:
        more = more or len(hosts) == 3
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    return f"{','.join(hosts)} + {len(rules) - 3} more..." if more else ",".join(hosts)


def load_balancer_address(o: Obj, now: float) -> str:
    found = {i.get("ip") or i.get("hostname") for i in get(o, "status", "loadBalancer", "ingress", default=[])}
    return ",".join(sorted(x for x in found if x))


def _ingress_class_parameters(o: Obj, now: float) -> str:
    params = get(o, "spec", "parameters")
    if not isinstance(params, dict):
        return NONE
    kind = str(params.get("kind", ""))
    if params.get("apiGroup") is not None:
        kind += "." + str(params["apiGroup"])
    return f"{kind}/{params.get('name', '')}"


def _ip_parent(o: Obj, now: float) -> str:
    ref = get(o, "spec", "parentRef")
    if not isinstance(ref, dict):
        return NONE
    resource, group = str(ref.get("resource", "")), str(ref.get("group", ""))
    text = (f"{resource}.{group}" if group else resource).lower()
    if ref.get("namespace"):
        text += "/" + str(ref["namespace"])
    return text + "/" + str(ref.get("name", ""))


_NET = "api.networking.v1."
NETWORKING = {
    "ingresses": (
        NAME,
        col("Class", field("spec", "ingressClassName", default=NONE),
            "The name of the IngressClass resource that should be used for additional configuration"),
        col("Hosts", ingress_hosts, "Hosts that incoming requests are matched against before the ingress rule"),
        col("Address", load_balancer_address, "Address is a list containing ingress points for the load-balancer"),
        col("Ports", lambda o, now: "80, 443" if get(o, "spec", "tls") else "80", "Ports of TLS configurations that open"),
        AGE,
    ),
    "ingressclasses": (
        NAME,
        col("Controller", field("spec", "controller"), "Controller that is responsible for handling this class"),
        col("Parameters", _ingress_class_parameters, "A reference to a resource with additional parameters"),
        AGE,
    ),
    "networkpolicies": (
        NAME, col("Pod-Selector", label_selector("spec", "podSelector"), doc(_NET + "NetworkPolicySpec", "podSelector")), AGE,
    ),
    "servicecidrs": (
        NAME, col("CIDRs", lambda o, now: ",".join(get(o, "spec", "cidrs", default=[])), doc(_NET + "ServiceCIDRSpec", "cidrs")),
        AGE,
    ),
    # Upstream defines only these two columns (its rows carry a third, unprinted age cell).
    "ipaddresses": (NAME, col("ParentRef", _ip_parent, doc(_NET + "IPAddressSpec", "parentRef"))),
}

# -- rbac ------------------------------------------------------------------------------------


def subjects(kind: str) -> Cell:
    """`rbac.SubjectsStrings`: users and groups by name, service accounts as `ns/name`."""
    def cell(o: Obj, now: float) -> str:
        names = []
        for s in o.get("subjects") or []:
            if s.get("kind") != kind:
                continue
            names.append(f"{s.get('namespace', '')}/{s.get('name', '')}" if kind == "ServiceAccount" else s.get("name", ""))
        return ", ".join(names)

    return cell


def _binding_columns(kind: str) -> tuple[Column, ...]:
    return (
        NAME,
        col("Role", lambda o, now: f"{get(o, 'roleRef', 'kind', default='')}/{get(o, 'roleRef', 'name', default='')}",
            doc(f"api.rbac.v1.{kind}", "roleRef")),
        AGE,
        wide("Users", subjects("User"), f"Users in the {kind[0].lower() + kind[1:]}"),
        wide("Groups", subjects("Group"), f"Groups in the {kind[0].lower() + kind[1:]}"),
        wide("ServiceAccounts", subjects("ServiceAccount"), f"ServiceAccounts in the {kind[0].lower() + kind[1:]}"),
    )


RBAC = {
    "roles": DEFAULT_COLUMNS,
    "clusterroles": DEFAULT_COLUMNS,
    "rolebindings": _binding_columns("RoleBinding"),
    "clusterrolebindings": _binding_columns("ClusterRoleBinding"),
}

# -- storage ---------------------------------------------------------------------------------

DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def storage_class_name(o: Obj, now: float) -> str:
    annotations = get(o, "metadata", "annotations", default={}) or {}
    default = any(annotations.get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)
    name = str(get(o, "metadata", "name", default=""))
    return name + " (default)" if default else name


def _token_requests(o: Obj, now: float) -> str:
    requests = get(o, "spec", "tokenRequests")
    if requests is None:
        return UNSET
    return ",".join(str(r.get("audience", "")) for r in requests)


_STORAGE = "api.storage.v1."
STORAGE = {
    "storageclasses": (
        Column("Name", "string", storage_class_name, NAME.description, 0, "name"),
        col("Provisioner", field("provisioner"), doc(_STORAGE + "StorageClass", "provisioner")),
        col("ReclaimPolicy", field("reclaimPolicy", default="Delete"), doc(_STORAGE + "StorageClass", "reclaimPolicy")),
        col("VolumeBindingMode", field("volumeBindingMode", default="Immediate"),
            doc(_STORAGE + "StorageClass", "volumeBindingMode")),
        col("AllowVolumeExpansion", lambda o, now: bool(o.get("allowVolumeExpansion", False)),
            doc(_STORAGE + "StorageClass", "allowVolumeExpansion")),
        AGE,
    ),
    "csidrivers": (
        NAME,
        col("AttachRequired", lambda o, now: bool(get(o, "spec", "attachRequired", default=True)),
            doc(_STORAGE + "CSIDriverSpec", "attachRequired"), type="boolean"),
        col("PodInfoOnMount", lambda o, now: bool(get(o, "spec", "podInfoOnMount", default=False)),
            doc(_STORAGE + "CSIDriverSpec", "podInfoOnMount"), type="boolean"),
        col("StorageCapacity", lambda o, now: bool(get(o, "spec", "storageCapacity", default=False)),
            doc(_STORAGE + "CSIDriverSpec", "storageCapacity"), type="boolean"),
        col("TokenRequests", _token_requests, doc(_STORAGE + "CSIDriverSpec", "tokenRequests")),
        col("RequiresRepublish", lambda o, now: bool(get(o, "spec", "requiresRepublish", default=False)),
            doc(_STORAGE + "CSIDriverSpec", "requiresRepublish"), type="boolean"),
        col("Modes", lambda o, now: ",".join(get(o, "spec", "volumeLifecycleModes", default=[])) or NONE,
            doc(_STORAGE + "CSIDriverSpec", "volumeLifecycleModes")),
        AGE,
    ),
    "csinodes": (
        NAME,
        col("Drivers", count("spec", "drivers"), "Drivers indicates the number of CSI drivers registered on the node",
            type="integer"),
        AGE,
    ),
    "csistoragecapacities": (
        NAME,
        col("StorageClassName", field("storageClassName"), doc(_STORAGE + "CSIStorageCapacity", "storageClassName")),
        col("Capacity", lambda o, now: str(o["capacity"]) if o.get("capacity") is not None else UNSET,
            doc(_STORAGE + "CSIStorageCapacity", "capacity")),
    ),
    "volumeattachments": (
        NAME,
        Column("Attacher", "string", field("spec", "attacher"), doc(_STORAGE + "VolumeAttachmentSpec", "attacher"), 0, "name"),
        col("PV", field("spec", "source", "persistentVolumeName"), doc(_STORAGE + "VolumeAttachmentSource", "persistentVolumeName")),
        col("Node", field("spec", "nodeName"), doc(_STORAGE + "VolumeAttachmentSpec", "nodeName")),
        col("Attached", lambda o, now: bool(get(o, "status", "attached", default=False)),
            doc(_STORAGE + "VolumeAttachmentStatus", "attached"), type="boolean"),
        AGE,
    ),
}

# -- admission -------------------------------------------------------------------------------

_WEBHOOKS = (
    NAME,
    col("Webhooks", count("webhooks"), "Webhooks indicates the number of webhooks registered in this configuration",
        type="integer"),
    AGE,
)


def _param_kind(o: Obj, now: float) -> str:
    kind = get(o, "spec", "paramKind")
    return f"{kind.get('apiVersion', '')}/{kind.get('kind', '')}" if isinstance(kind, dict) else UNSET


def _param_ref(o: Obj, now: float) -> str:
    ref = get(o, "spec", "paramRef")
    if not isinstance(ref, dict):
        return UNSET
    if ref.get("name"):
        return f"{ref.get('namespace') or '*'}/{ref['name']}"
    if ref.get("selector") is not None:
        from pykube_server.api.selectors import SelectorError, selector_from_object

        try:
            return selector_from_object(ref["selector"]).to_string()
        except SelectorError:
            return "<error>"
    return UNSET


ADMISSION = {
    "mutatingwebhookconfigurations": _WEBHOOKS,
    "validatingwebhookconfigurations": _WEBHOOKS,
    "validatingadmissionpolicies": (
        NAME,
        col("Validations", count("spec", "validations"),
            "Validations indicates the number of validation rules defined in this configuration", type="integer"),
        col("ParamKind", _param_kind, "ParamKind specifies the kind of resources used to parameterize this policy"),
        AGE,
    ),
    "validatingadmissionpolicybindings": (
        NAME,
        col("PolicyName", field("spec", "policyName"),
            "PolicyName indicates the policy definition which the policy binding binded to"),
        col("ParamRef", _param_ref, "ParamRef indicates the param resource which sets the configration param"),
        AGE,
    ),
}

# -- certificates, coordination, scheduling, node, discovery ---------------------------------


def csr_condition(o: Obj, now: float) -> str:
    """`extractCSRStatus`: Denied/Approved/Pending, then `,Failed` and `,Issued`."""
    kinds = {c.get("type") for c in get(o, "status", "conditions", default=[])}
    text = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        text += ",Failed"
    if get(o, "status", "certificate"):
        text += ",Issued"
    return text


def _requested_duration(o: Obj, now: float) -> str:
    seconds = get(o, "spec", "expirationSeconds")
    return NONE if seconds is None else human_duration(int(seconds))


def _endpoint_slice_ports(o: Obj, now: float) -> str:
    ports = get(o, "ports", default=[])
    texts = [str(p["port"]) if p.get("port") is not None else str(p.get("name") or "*") for p in ports]
    return list_with_more(texts, len(texts))


def _endpoint_slice_addresses(o: Obj, now: float) -> str:
    addresses = [a for e in get(o, "endpoints", default=[]) for a in e.get("addresses") or []]
    return list_with_more(addresses, len(addresses))


_CSR = "api.certificates.v1.CertificateSigningRequest"
MISC: dict[tuple[str, str], tuple[Column, ...]] = {
    ("certificates.k8s.io", "certificatesigningrequests"): (
        NAME,
        AGE,
        col("SignerName", lambda o, now: get(o, "spec", "signerName", default="") or NONE, doc(_CSR + "Spec", "signerName")),
        col("Requestor", field("spec", "username"), doc(_CSR + "Spec", "request")),
        col("RequestedDuration", _requested_duration, doc(_CSR + "Spec", "expirationSeconds")),
        col("Condition", csr_condition, doc(_CSR + "Status", "conditions")),
    ),
    ("coordination.k8s.io", "leases"): (
        NAME, col("Holder", field("spec", "holderIdentity"), doc("api.coordination.v1.LeaseSpec", "holderIdentity")), AGE,
    ),
    ("scheduling.k8s.io", "priorityclasses"): (
        NAME,
        col("Value", lambda o, now: int(o.get("value") or 0), doc("api.scheduling.v1.PriorityClass", "value"), type="integer"),
        col("Global-Default", lambda o, now: bool(o.get("globalDefault", False)),
            doc("api.scheduling.v1.PriorityClass", "globalDefault"), type="boolean"),
        AGE,
        col("PreemptionPolicy", field("preemptionPolicy"), doc("api.scheduling.v1.PriorityClass", "preemptionPolicy")),
    ),
    ("node.k8s.io", "runtimeclasses"): (NAME, col("Handler", field("handler")), AGE),
    ("discovery.k8s.io", "endpointslices"): (
        NAME,
        col("AddressType", field("addressType"), doc("api.discovery.v1.EndpointSlice", "addressType")),
        col("Ports", _endpoint_slice_ports, doc("api.discovery.v1.EndpointSlice", "ports")),
        col("Endpoints", _endpoint_slice_addresses, doc("api.discovery.v1.EndpointSlice", "endpoints")),
        AGE,
    ),
}

# -- flow control ----------------------------------------------------------------------------


def _dangling(o: Obj, now: float) -> str:
    c = condition(get(o, "status", "conditions"), "Dangling")
    return "?" if c is None else str(c.get("status", ""))


def _limited(*path: str) -> Cell:
    def cell(o: Obj, now: float) -> object:
        limited = get(o, "spec", "limited")
        if not isinstance(limited, dict):
            return NONE
        if path[0] != "nominalConcurrencyShares" and get(limited, "limitResponse", "queuing") is None:
            return NONE
        value = get(limited, *path) if path[0] == "nominalConcurrencyShares" else get(limited, "limitResponse", "queuing", *path)
        return 0 if value is None else value

    return cell


_FC = "api.flowcontrol.v1."
FLOW_CONTROL = {
    "flowschemas": (
        NAME,
        col("PriorityLevel", field("spec", "priorityLevelConfiguration", "name"),
            doc(_FC + "PriorityLevelConfigurationReference", "name")),
        col("MatchingPrecedence", lambda o, now: int(get(o, "spec", "matchingPrecedence", default=0)),
            doc(_FC + "FlowSchemaSpec", "matchingPrecedence")),
        col("DistinguisherMethod", field("spec", "distinguisherMethod", "type", default=NONE),
            doc(_FC + "FlowSchemaSpec", "distinguisherMethod")),
        AGE,
        col("MissingPL", _dangling, "references a broken or non-existent PriorityLevelConfiguration"),
    ),
    "prioritylevelconfigurations": (
        NAME,
        col("Type", field("spec", "type"), doc(_FC + "PriorityLevelConfigurationSpec", "type")),
        col("NominalConcurrencyShares", _limited("nominalConcurrencyShares"),
            doc(_FC + "LimitedPriorityLevelConfiguration", "nominalConcurrencyShares")),
        col("Queues", _limited("queues"), doc(_FC + "QueuingConfiguration", "queues")),
        col("HandSize", _limited("handSize"), doc(_FC + "QueuingConfiguration", "handSize")),
        col("QueueLengthLimit", _limited("queueLengthLimit"), doc(_FC + "QueuingConfiguration", "queueLengthLimit")),
        AGE,
    ),
}

# -- API registration ------------------------------------------------------------------------


def apiservice_service(o: Obj, now: float) -> str:
    svc = get(o, "spec", "service")
    return f"{svc.get('namespace', '')}/{svc.get('name', '')}" if isinstance(svc, dict) else "Local"


def apiservice_available(o: Obj, now: float) -> str:
    c = condition(get(o, "status", "conditions"), "Available")
    if c is None:
        return "Unknown"
    status = str(c.get("status", ""))
    if status != "True" and c.get("reason"):
        return f"{status} ({c['reason']})"
    return status


API_SERVICE_COLUMNS = (
    NAME,
    col("Service", apiservice_service, "The reference to the service that hosts this API endpoint."),
    col("Available", apiservice_available, "Whether this service is available."),
    AGE,
)


def _grouped(group: str, table: dict[str, tuple[Column, ...]]) -> dict[tuple[str, str], tuple[Column, ...]]:
    return {(group, plural): columns for plural, columns in table.items()}


COLUMNS: dict[tuple[str, str], tuple[Column, ...]] = {
    **_grouped("networking.k8s.io", NETWORKING),
    **_grouped("rbac.authorization.k8s.io", RBAC),
    **_grouped("storage.k8s.io", STORAGE),
    **_grouped("admissionregistration.k8s.io", ADMISSION),
    **_grouped("flowcontrol.apiserver.k8s.io", FLOW_CONTROL),
    **MISC,
    ("events.k8s.io", "events"): EVENTS_V1_COLUMNS,
    ("apiregistration.k8s.io", "apiservices"): API_SERVICE_COLUMNS,
    ("apiextensions.k8s.io", "customresourcedefinitions"): DEFAULT_COLUMNS,
    **{("authentication.k8s.io", p): DEFAULT_COLUMNS for p in ("selfsubjectreviews", "tokenreviews")},
    **{("authorization.k8s.io", p): DEFAULT_COLUMNS for p in (
        "localsubjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews")},
}
