"""Scheme defaults for pod specs: `SetDefaults_PodSpec`, `_Container`, `_Probe`, `_Volume`...

One function per upstream `SetDefaults_*`, applied in the order `zz_generated.defaults.go`
applies them. A pod template gets these too (every workload kind embeds one); only a Pod gets
`pod_only_defaults` (requests copied from limits, `enableServiceLinks`, host-network ports),
because upstream runs those in `SetDefaults_Pod`, not `SetDefaults_PodSpec`.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
DEFAULT_MODE = 420
"""0644, the default file mode of secret/configMap/projected/downwardAPI volumes."""

_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or no tag, IfNotPresent otherwise (digests included)."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _items(obj: Obj, key: str) -> list[Obj]:
    value = obj.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _dict(obj: Obj, key: str) -> Obj | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def default_http_get(action: Obj | None) -> None:
    if action is not None:
        action.setdefault("path", "/")
        action.setdefault("scheme", "HTTP")


def default_handler(handler: Obj | None) -> None:
    if handler is not None:
        default_http_get(_dict(handler, "httpGet"))


def default_probe(probe: Obj | None) -> None:
    if probe is None:
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    default_handler(probe)
    grpc = _dict(probe, "grpc")
    if grpc is not None:
        grpc.setdefault("service", "")


def _default_env(container: Obj) -> None:
    for env in _items(container, "env"):
        source = _dict(env, "valueFrom") or {}
        field_ref = _dict(source, "fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")
        resource_ref = _dict(source, "resourceFieldRef")
        if resource_ref is not None:
            resource_ref.setdefault("divisor", "0")


def default_container(c: Obj) -> None:
    """SetDefaults_Container (and _EphemeralContainer), with its ports, probes and hooks."""
    image = c.get("image")
    c.setdefault("imagePullPolicy", image_pull_policy(image) if isinstance(image, str) and image else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in _items(c, "ports"):
        port.setdefault("protocol", "TCP")
    _default_env(c)
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        default_probe(_dict(c, key))
    lifecycle = _dict(c, "lifecycle") or {}
    for key in ("postStart", "preStop"):
        default_handler(_dict(lifecycle, key))


def _default_items_field_refs(source: Obj) -> None:
    for item in _items(source, "items"):
        ref = _dict(item, "fieldRef")
        if ref is not None:
            ref.setdefault("apiVersion", "v1")


def _default_projected(projected: Obj) -> None:
    projected.setdefault("defaultMode", DEFAULT_MODE)
    for source in _items(projected, "sources"):
        token = _dict(source, "serviceAccountToken")
        if token is not None:
            token.setdefault("expirationSeconds", 3600)
        downward = _dict(source, "downwardAPI")
        if downward is not None:
            _default_items_field_refs(downward)


def default_pvc_spec(spec: Obj) -> None:
    """SetDefaults_PersistentVolumeClaimSpec."""
    spec.setdefault("volumeMode", "Filesystem")


def default_volume(volume: Obj) -> None:
    """SetDefaults_Volume plus the defaults of the source it names."""
    if not any(key in volume for key in _VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI"):
        source = _dict(volume, key)
        if source is not None:
            source.setdefault("defaultMode", DEFAULT_MODE)
    if (downward := _dict(volume, "downwardAPI")) is not None:
        _default_items_field_refs(downward)
    if (projected := _dict(volume, "projected")) is not None:
        _default_projected(projected)
    if (host_path := _dict(volume, "hostPath")) is not None:
        host_path.setdefault("type", "")
    if (iscsi := _dict(volume, "iscsi")) is not None:
        iscsi.setdefault("iscsiInterface", "default")
    if (rbd := _dict(volume, "rbd")) is not None:
        rbd.setdefault("pool", "rbd")
        rbd.setdefault("user", "admin")
        rbd.setdefault("keyring", "/etc/ceph/keyring")
    if (azure := _dict(volume, "azureDisk")) is not None:
        azure.setdefault("cachingMode", "ReadWrite")
        azure.setdefault("fsType", "ext4")
        azure.setdefault("readOnly", False)
        azure.setdefault("kind", "Shared")
    if (image := _dict(volume, "image")) is not None and isinstance(image.get("reference"), str):
        image.setdefault("pullPolicy", image_pull_policy(image["reference"]))
    template = _dict(_dict(volume, "ephemeral") or {}, "volumeClaimTemplate") or {}
    if (spec := _dict(template, "spec")) is not None:
        default_pvc_spec(spec)


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and the nested defaults, for pods and pod templates alike."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account:  # v1 conversion: serviceAccountName wins, the deprecated field mirrors it
        spec["serviceAccountName"] = spec["serviceAccount"] = account
    for volume in _items(spec, "volumes"):
        default_volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _items(spec, key):
            default_container(container)


def _requests_from_limits(container: Obj) -> None:
    resources = _dict(container, "resources")
    limits = _dict(resources or {}, "limits")
    if resources is None or not limits:
        return
    requests = resources.setdefault("requests", {})
    if isinstance(requests, dict):
        for name, value in limits.items():
            requests.setdefault(name, value)


def _host_network_ports(containers: list[Obj]) -> None:
    for container in containers:
        for port in _items(container, "ports"):
            if not port.get("hostPort") and "containerPort" in port:
                port["hostPort"] = port["containerPort"]


def pod_only_defaults(spec: Obj) -> None:
    """What SetDefaults_Pod adds for a Pod but not for a template."""
    for key in ("initContainers", "containers"):
        for container in _items(spec, key):
            _requests_from_limits(container)
    spec.setdefault("enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        _host_network_ports(_items(spec, "containers"))
        _host_network_ports(_items(spec, "initContainers"))


def default_pod(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        pod_only_defaults(spec)
        default_pod_spec(spec)


def default_template(template: Any) -> None:
    """A PodTemplateSpec: its pod spec gets the template defaults."""
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])
