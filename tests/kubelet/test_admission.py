"""The kubelet's host-port admission (canAdmitPod with the NodePorts predicate)."""

from __future__ import annotations

from pykube_server.kubelet import admission


def pod(*ports: dict, phase: str = "Running") -> dict:
    return {"metadata": {"name": "p", "uid": "u"}, "status": {"phase": phase},
            "spec": {"containers": [{"name": "c", "ports": list(ports)}]}}


def port(host: int, ip: str = "", protocol: str = "") -> dict:
    out: dict = {"containerPort": 80, "hostPort": host}
    if ip:
        out["hostIP"] = ip
    if protocol:
        out["protocol"] = protocol
    return out


MESSAGE = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"


def test_same_port_and_protocol_is_rejected_with_the_kubelet_text() -> None:
    assert admission.rejection(pod(port(21017)), [pod(port(21017))]) == ("NodePorts", MESSAGE)
    assert admission.rejected_status("NodePorts", MESSAGE) == {
        "phase": "Failed", "reason": "NodePorts", "message": f"Pod was rejected: {MESSAGE}"}


def test_any_address_conflicts_with_a_specific_one() -> None:
    assert admission.rejection(pod(port(54322, "127.0.0.1")), [pod(port(54322, "0.0.0.0"))]) is not None
    assert admission.rejection(pod(port(54322, "0.0.0.0")), [pod(port(54322, "127.0.0.1"))]) is not None


def test_different_ip_protocol_or_port_fits() -> None:
    active = [pod(port(54322, "127.0.0.1"))]
    assert admission.rejection(pod(port(54322, "127.0.0.2")), active) is None
    assert admission.rejection(pod(port(54322, "127.0.0.1", "UDP")), active) is None
    assert admission.rejection(pod(port(54323, "127.0.0.1")), active) is None
    assert admission.rejection(pod({"containerPort": 80}), [pod({"containerPort": 80})]) is None


def test_finished_pods_free_their_ports() -> None:
    assert not admission.is_active(pod(port(1), phase="Succeeded"))
    assert not admission.is_active(pod(port(1), phase="Failed"))
    assert admission.is_active(pod(port(1), phase="Pending"))
