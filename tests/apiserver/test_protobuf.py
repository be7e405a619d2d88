"""Tests for the protobuf request body decoder.

``protobuf_bodies/<name>.bin`` are bodies captured from the real kubectl 1.33.1
(``kubectl --server=http://127.0.0.1:PORT create ...`` against a recording stub). Beside each,
``<name>.json`` is what the same command prints with ``--dry-run=client -o json``, i.e. Go's
encoding/json of the same object. The decoder must reproduce it exactly: no field is excused.

``token``, ``can_i``, ``can_i_list`` and ``whoami`` (``create token default --duration=1h
--audience=aud1``, ``auth can-i create pods``, ``auth can-i --list``, ``auth whoami``) have no
``--dry-run``; their ``.json`` was written by hand from the Go struct tags: for example
``TokenRequestStatus.expirationTimestamp`` is a ``metav1.Time`` without ``omitempty`` (so
``null``), and ``SubjectRulesReviewStatus.resourceRules`` a slice without ``omitempty`` (so
``null`` when nil).

Facts learned from the captures: ``kubectl drain`` (1.33) POSTs its Eviction as JSON and
``kubectl cordon`` sends a strategic-merge-patch JSON, so neither needs protobuf; the Eviction
and DeleteOptions cases below are built by hand.
"""
from __future__ import annotations

import base64
import struct
from pathlib import Path

import orjson
import pytest

from pykube_server.apiserver.protobuf import (
    MAGIC,
    ProtobufError,
    decode_body,
    decode_message,
    go_duration,
    iter_fields,
    message_for,
    read_varint,
)

BODIES = Path(__file__).with_name("protobuf_bodies")
CAPTURED = sorted(p.stem for p in BODIES.glob("*.bin"))
META = "apimachinery.pkg.apis.meta.v1"


# --- a minimal test-side encoder ------------------------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vi(num: int, n: int) -> bytes:
    return varint(num << 3) + varint(n)


def ld(num: int, payload: bytes) -> bytes:
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def s(num: int, text: str) -> bytes:
    return ld(num, text.encode())


def entry(num: int, key: str, value: bytes) -> bytes:
    return ld(num, s(1, key) + ld(2, value))


def envelope(api_version: str, kind: str, raw: bytes, extra: bytes = b"") -> bytes:
    return MAGIC + ld(1, s(1, api_version) + s(2, kind)) + ld(2, raw) + extra


def meta(name: str, *more: bytes) -> bytes:
    """ObjectMeta as Go writes it: every non-pointer field present, zero or not."""
    return ld(1, s(1, name) + s(2, "") + s(3, "") + s(4, "") + s(5, "") + s(6, "") + vi(7, 0)
              + ld(8, b"") + b"".join(more))


# --- captured kubectl bodies ----------------------------------------------------------------

def test_all_requested_captures_are_present() -> None:
    wanted = {"configmap_literal", "configmap_file", "secret_generic", "secret_docker_registry",
              "namespace", "deployment", "deployment_replicas3", "deployment_replicas0",
              "service_clusterip", "service_nodeport", "job", "cronjob", "serviceaccount", "role",
              "rolebinding", "clusterrole", "quota", "pdb", "pdb_max_unavailable", "priorityclass",
              "ingress", "token", "can_i", "can_i_list", "whoami"}
    assert wanted <= set(CAPTURED)
    assert all((BODIES / f"{name}.json").exists() for name in CAPTURED)


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_body_decodes_to_kubectls_json(name: str) -> None:
    body = (BODIES / f"{name}.bin").read_bytes()
    assert body.startswith(MAGIC)
    assert decode_body(body) == orjson.loads((BODIES / f"{name}.json").read_bytes())


def test_pointer_zero_is_kept_but_omitempty_zero_is_dropped() -> None:
    obj = decode_body((BODIES / "deployment_replicas0.bin").read_bytes())
    assert obj["spec"]["replicas"] == 0
    assert obj["metadata"] == {"name": "d0", "creationTimestamp": None, "labels": {"app": "d0"}}
    # kubectl's --replicas defaults to 1 and is always sent (a *int32, so on the wire iff set)
    assert decode_body((BODIES / "deployment.bin").read_bytes())["spec"]["replicas"] == 1


def test_secret_bytes_are_base64_and_binary_configmap_data_too() -> None:
    secret = decode_body((BODIES / "secret_generic.bin").read_bytes())
    assert base64.b64decode(secret["data"]["pass"]) == b"s3cr3t"
    cm = decode_body((BODIES / "configmap_file.bin").read_bytes())
    assert base64.b64decode(cm["binaryData"]["blob"]) == b"\x00\x01\xff\xfebinary"


def test_int_or_string_and_canonical_quantity() -> None:
    assert decode_body((BODIES / "pdb.bin").read_bytes())["spec"]["minAvailable"] == "50%"
    assert decode_body((BODIES / "pdb_max_unavailable.bin").read_bytes())["spec"]["maxUnavailable"] == 1
    # kubectl sent --hard=cpu=1000m: the Go client canonicalises it to "1" before encoding.
    assert decode_body((BODIES / "quota.bin").read_bytes())["spec"]["hard"] == {
        "cpu": "1", "memory": "1Gi", "pods": "10"}


# --- special types and Go JSON rules --------------------------------------------------------

def test_lease_micro_time_and_pointer_fields() -> None:
    spec = (s(1, "node-a") + vi(2, 40) + ld(3, vi(1, 1704164645) + vi(2, 123456789))
            + ld(4, vi(1, 1704164645)) + vi(5, 0))
    obj = decode_body(envelope("coordination.k8s.io/v1", "Lease", meta("n", s(3, "kube-node-lease")) + ld(2, spec)))
    assert obj == {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
                   "metadata": {"name": "n", "namespace": "kube-node-lease", "creationTimestamp": None},
                   "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40,
                            "acquireTime": "2024-01-02T03:04:05.123456Z",
                            "renewTime": "2024-01-02T03:04:05.000000Z", "leaseTransitions": 0}}


def test_time_seconds_precision_and_pre_epoch() -> None:
    assert decode_message(vi(1, 1704164645) + vi(2, 999_000_000), f"{META}.Time") == "2024-01-02T03:04:05Z"
    assert decode_message(vi(1, -1), f"{META}.Time") == "1969-12-31T23:59:59Z"
    assert decode_message(b"", f"{META}.Time") is None
    assert decode_message(vi(1, 0), f"{META}.Time") == "1970-01-01T00:00:00Z"  # epoch is not zero


@pytest.mark.parametrize(("nanos", "text"), [
    (0, "0s"), (3_600_000_000_000, "1h0m0s"), (90_000_000_000, "1m30s"), (1_500_000_000, "1.5s"),
    (300_000_000, "300ms"), (1_500, "1.5µs"), (7, "7ns"), (-2_000_000_000, "-2s"),
    (93_784_000_000_001, "26h3m4.000000001s")])
def test_go_duration_strings(nanos: int, text: str) -> None:
    assert go_duration(nanos) == text
    assert decode_message(vi(1, nanos), f"{META}.Duration") == text


def test_inline_structs_renames_and_negative_ints() -> None:
    volume = s(1, "v") + ld(2, ld(2, s(1, "Memory")))  # Volume{name, volumeSource{emptyDir{medium}}}
    probe = ld(1, ld(1, s(1, "true"))) + vi(2, 1)       # Probe{handler{exec{command}}, initialDelaySeconds}
    container = s(1, "c") + s(2, "img") + ld(10, probe)
    pod_spec = ld(1, volume) + ld(2, container) + vi(4, (1 << 64) - 30)  # terminationGracePeriodSeconds=-30
    obj = decode_body(envelope("v1", "Pod", meta("p") + ld(2, pod_spec)))
    assert obj["spec"]["volumes"] == [{"name": "v", "emptyDir": {"medium": "Memory"}}]
    probe_json = obj["spec"]["containers"][0]["livenessProbe"]
    assert probe_json == {"exec": {"command": ["true"]}, "initialDelaySeconds": 1}
    assert obj["spec"]["terminationGracePeriodSeconds"] == -30
    token = ld(3, s(1, "Pod") + s(2, "v1") + s(3, "p") + s(4, "uid-1"))  # BoundObjectReference.uID
    tr = decode_body(envelope("authentication.k8s.io/v1", "TokenRequest", meta("sa") + ld(2, token)))
    assert tr["spec"]["boundObjectRef"] == {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "uid-1"}


def test_named_slice_map_values_and_embedded_json() -> None:
    sar_spec = s(3, "alice") + s(4, "devs") + entry(5, "scopes", s(1, "a") + s(1, "b"))
    sar = decode_body(envelope("authorization.k8s.io/v1", "SubjectAccessReview", meta("") + ld(2, sar_spec)))
    assert sar["spec"] == {"user": "alice", "groups": ["devs"], "extra": {"scopes": ["a", "b"]}}
    managed = ld(17, s(1, "kubectl") + s(2, "Update") + s(3, "v1") + ld(4, b"")
                 + s(6, "FieldsV1") + ld(7, ld(1, b'{"f:data":{}}')))
    rev = decode_body(envelope("apps/v1", "ControllerRevision", meta("r", managed) + ld(2, ld(1, b'{"a":[1]}')) + vi(3, 2)))
    assert rev["data"] == {"a": [1]} and rev["revision"] == 2
    assert rev["metadata"]["managedFields"] == [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                                                 "time": None, "fieldsType": "FieldsV1",
                                                 "fieldsV1": {"f:data": {}}}]


def test_eviction_and_delete_options_in_any_group_version() -> None:
    opts = vi(1, 0) + s(4, "Background") + s(5, "All")  # gracePeriodSeconds=0 is a pointer: kept
    ev = decode_body(envelope("policy/v1", "Eviction", meta("p1", s(3, "default")) + ld(2, opts)))
    assert ev == {"kind": "Eviction", "apiVersion": "policy/v1",
                  "metadata": {"name": "p1", "namespace": "default", "creationTimestamp": None},
                  "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Background", "dryRun": ["All"]}}
    assert decode_body(envelope("apps/v1", "DeleteOptions", opts))["kind"] == "DeleteOptions"


def test_packed_and_unpacked_repeated_int32() -> None:
    message = "api.batch.v1.PodFailurePolicyOnExitCodesRequirement"
    packed = s(1, "c") + s(2, "In") + ld(3, varint(1) + varint(42) + varint((1 << 64) - 1))
    assert decode_message(packed, message) == {"containerName": "c", "operator": "In", "values": [1, 42, -1]}
    unpacked = s(2, "In") + vi(3, 1) + vi(3, 2)
    assert decode_message(unpacked, message) == {"operator": "In", "values": [1, 2]}


def test_unknown_fields_are_skipped() -> None:
    raw = meta("cm") + vi(99, 7) + varint(98 << 3 | 1) + struct.pack("<d", 1.5) + varint(97 << 3 | 5) + b"\0" * 4
    assert decode_body(envelope("v1", "ConfigMap", raw)) == {
        "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cm", "creationTimestamp": None}}


# --- the wire reader ------------------------------------------------------------------------

def test_read_varint() -> None:
    assert read_varint(b"\x01", 0) == (1, 1)
    assert read_varint(b"\xac\x02rest", 0) == (300, 2)
    assert read_varint(b"\xff" * 9 + b"\x01", 0) == ((1 << 64) - 1, 10)
    with pytest.raises(ProtobufError, match="truncated varint"):
        read_varint(b"\x80\x80", 0)
    with pytest.raises(ProtobufError, match="longer than 10"):
        read_varint(b"\x80" * 11, 0)


def test_iter_fields_wire_types() -> None:
    buf = vi(1, 150) + varint(2 << 3 | 1) + b"12345678" + s(3, "hi") + varint(4 << 3 | 5) + b"abcd"
    assert list(iter_fields(buf)) == [(1, 0, 150), (2, 1, b"12345678"), (3, 2, b"hi"), (4, 5, b"abcd")]


@pytest.mark.parametrize(("buf", "match"), [
    (varint(1 << 3 | 2) + varint(5) + b"abc", "truncated field 1"),
    (varint(1 << 3 | 1) + b"1234", "truncated field 1"),
    (varint(1 << 3 | 3), "unsupported wire type 3"),
    (varint(0 << 3 | 0) + varint(1), "field number 0"),
])
def test_iter_fields_rejects_malformed(buf: bytes, match: str) -> None:
    with pytest.raises(ProtobufError, match=match):
        list(iter_fields(buf))


# --- malformed bodies -----------------------------------------------------------------------

@pytest.mark.parametrize(("body", "match"), [
    (b'{"kind":"ConfigMap"}', "prefix"),
    (b"", "prefix"),
    (envelope("v1", "Bogus", b""), 'no kind "Bogus" is registered for version "v1"'),
    (envelope("apps/v1", "ConfigMap", b""), 'no kind "ConfigMap" is registered for version "apps/v1"'),
    (MAGIC + ld(2, b""), "Kind' is missing"),
    (envelope("v1", "ConfigMap", b"", s(3, "gzip")), "content encoding"),
    (envelope("v1", "ConfigMap", b"", s(4, "application/json")), "content type"),
    (envelope("v1", "ConfigMap", vi(1, 5)), "field 1 of api.core.v1.ConfigMap: wire type 0, want 2"),
    (envelope("v1", "ConfigMap", ld(1, vi(1, 3))), "wire type 0, want 2"),
    (envelope("v1", "ConfigMap", ld(4, b"")), "wire type 2, want 0"),  # immutable is a bool
    (envelope("v1", "ConfigMap", meta("x")[:-3]), "truncated"),
    (MAGIC + b"\x0a\x05\x0a", "truncated field 1"),
    (envelope("apps/v1", "ControllerRevision", ld(2, ld(1, b"{not json"))), "not valid JSON"),
    (envelope("apps/v1", "Deployment", ld(2, vi(1, 1 << 40))), "out of range for int32"),
])
def test_malformed_bodies_raise(body: bytes, match: str) -> None:
    with pytest.raises(ProtobufError, match=match):
        decode_body(body)


def test_nested_raw_extensions_cannot_exhaust_the_stack() -> None:
    body = envelope("apps/v1", "ControllerRevision", b"")
    for _ in range(400):
        body = envelope("apps/v1", "ControllerRevision", ld(2, ld(1, body)))
    with pytest.raises(ProtobufError, match="nested too deeply"):
        decode_body(body)


def test_message_for_covers_ga_groups() -> None:
    for gvk in ["v1 Pod", "apps/v1 StatefulSet", "batch/v1 CronJob", "autoscaling/v2 HorizontalPodAutoscaler",
                "networking.k8s.io/v1 NetworkPolicy", "rbac.authorization.k8s.io/v1 ClusterRoleBinding",
                "storage.k8s.io/v1 StorageClass", "coordination.k8s.io/v1 Lease", "discovery.k8s.io/v1 EndpointSlice",
                "events.k8s.io/v1 Event", "flowcontrol.apiserver.k8s.io/v1 FlowSchema",
                "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration", "node.k8s.io/v1 RuntimeClass",
                "certificates.k8s.io/v1 CertificateSigningRequest", "policy/v1 PodDisruptionBudget",
                "scheduling.k8s.io/v1 PriorityClass", "authentication.k8s.io/v1 TokenReview",
                "v1 Binding", "meta.k8s.io/v1 Status"]:
        api_version, kind = gvk.split(" ")
        assert message_for(api_version, kind).endswith("." + kind)


# --- the generated table and its generator --------------------------------------------------

def test_schema_table_is_closed_and_go_named() -> None:
    from pykube_server.apiserver.protobuf import SCHEMA_PATH, SPECIAL

    table = orjson.loads(SCHEMA_PATH.read_bytes())
    known = set(table["messages"]) | set(SPECIAL) | {"string", "int32", "int64", "bool", "bytes"}
    for name, fields in table["messages"].items():
        for json_name, ftype, flags in fields.values():
            assert set(ftype.removeprefix("map:").split(":")) <= known, (name, ftype)
            assert set(flags) <= set("ropi") and (json_name or "i" in flags or name in SPECIAL), name
    assert set(table["kinds"].values()) <= set(table["messages"])
    assert table["messages"]["api.networking.v1.IngressClassParametersReference"]["1"][0] == "apiGroup"


def _generator():  # tools/ is not a package
    import importlib.util
    import sys

    if "gen_protobuf_table" in sys.modules:
        return sys.modules["gen_protobuf_table"]
    path = Path(__file__).parents[2] / "tools" / "gen_protobuf_table.py"
    spec = importlib.util.spec_from_file_location("gen_protobuf_table", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_generator_parses_proto_subset_and_go_tags() -> None:
    gen = _generator()
    proto = '''/* licence with "quotes" */
syntax = "proto2";
package k8s.io.api.demo.v1;
import "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto";
option go_package = "k8s.io/api/demo/v1";
// +protobuf.nullable=true
message Names {
  repeated string items = 1;
}
message Widget {
  optional .k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;
  map<string, string> labels = 2;
  repeated Names names = 3;
  optional int32 count = 4;
}
'''
    msgs = {m.name: m for m in gen.parse_proto(proto)}
    assert msgs["api.demo.v1.Names"].wrapper and not msgs["api.demo.v1.Widget"].wrapper
    fields = [(f.name, f.type, f.number, f.repeated) for f in msgs["api.demo.v1.Widget"].fields]
    assert fields == [("metadata", "apimachinery.pkg.apis.meta.v1.ObjectMeta", 1, False),
                      ("labels", "map:string:string", 2, False),
                      ("names", "api.demo.v1.Names", 3, True), ("count", "int32", 4, False)]
    go = '''// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Widget is a demo.
type Widget struct {
	metav1.TypeMeta `json:",inline"`
	Count *int32 `json:"count,omitempty" protobuf:"varint,4,opt,name=count"`
	Spec WidgetSpec `json:",inline" protobuf:"bytes,5,opt,name=spec"`
	Skip string `json:"skip" protobuf:"-"`
}
'''
    widget = gen.parse_go(go)["Widget"]
    assert widget.is_object
    assert widget.fields == {4: gen.GoField("count", True, True, False), 5: gen.GoField("", False, False, True)}
    assert gen.group_version("api.rbac.v1") == "rbac.authorization.k8s.io/v1"
    assert gen.group_version("api.core.v1") == "v1"
