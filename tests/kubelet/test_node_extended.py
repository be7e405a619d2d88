"""Extended resources others advertise in the node's capacity reach its allocatable."""

from __future__ import annotations

from pykube_server.kubelet import node
from pykube_server.kubelet.node import Resources

RES = Resources(cpu="2", memory_bytes=2**30, ephemeral_storage_bytes=2**34)


def status(old: dict) -> dict:
    return node.node_status("n1", old=old, res=RES, runtime_version="pykube://1", port=10250,
                            now="2026-01-01T00:00:00Z")


def test_extended_capacity_is_kept_and_copied_to_allocatable() -> None:
    out = status({"capacity": {"example.com/dongle": "3", "cpu": "99"}, "allocatable": {}})
    assert out["capacity"]["example.com/dongle"] == "3" and out["allocatable"]["example.com/dongle"] == "3"
    assert out["capacity"]["cpu"] == "2"  # native resources stay the kubelet's own


def test_extended_resources_gone_from_capacity_leave_allocatable() -> None:
    out = status({"capacity": {}, "allocatable": {"example.com/dongle": "3", "cpu": "1"}})
    assert "example.com/dongle" not in out["capacity"]
    assert out["allocatable"]["example.com/dongle"] is None  # null deletes it in the merge patch


def test_which_names_are_extended() -> None:
    assert node.is_extended("example.com/dongle")
    assert not node.is_extended("cpu") and not node.is_extended("hugepages-2Mi")
    assert not node.is_extended("kubernetes.io/something") and not node.is_extended("requests.example.com/x")
