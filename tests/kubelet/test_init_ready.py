"""Init containers' `ready` in the pod status the kubelet writes (`status.pod_status`)."""

from __future__ import annotations

from pykube_server.kubelet import status as podstatus
from pykube_server.kubelet.runtime import ContainerState, ContainerStatus


def _view(name: str, state: ContainerState, exit_code: int | None = None, ready: bool = False,
          sidecar: bool = False) -> podstatus.ContainerView:
    spec = {"name": name, "image": "busybox", **({"restartPolicy": "Always"} if sidecar else {})}
    current = ContainerStatus(id=f"id-{name}", sandbox_id="s", name=name, image="busybox", state=state,
                              started_at=1.0, finished_at=2.0 if exit_code is not None else None, exit_code=exit_code)
    return podstatus.ContainerView(spec, current, ready=ready, started=state is ContainerState.RUNNING)


def _init_statuses(init: list[podstatus.ContainerView], phase: str | None = None) -> dict[str, bool]:
    pod = {"metadata": {"name": "p"}, "spec": {"restartPolicy": "Never"}}
    main = [_view("run1", ContainerState.EXITED, 0)]
    status = podstatus.pod_status(pod, init=init, containers=main, sandbox_ready=True, pod_ip="", host_ip="127.0.0.1",
                                  start_time="2026-01-01T00:00:00Z", now="2026-01-01T00:00:01Z", runtime="pykube",
                                  phase=phase)
    return {s["name"]: s["ready"] for s in status["initContainerStatuses"]}


def test_init_container_ready_once_it_exited_zero_even_in_a_terminal_pod() -> None:
    """The kubelet's prober manager marks an init container that exited 0 ready (the conformance test
    "InitContainer should invoke init containers on a RestartNever pod" checks it on a Succeeded pod)."""
    ready = _init_statuses([_view("init1", ContainerState.EXITED, 0), _view("init2", ContainerState.EXITED, 1)],
                           phase="Succeeded")
    assert ready == {"init1": True, "init2": False}


def test_running_init_container_is_not_ready_but_a_sidecar_keeps_its_readiness() -> None:
    ready = _init_statuses([_view("init1", ContainerState.RUNNING, ready=True),
                            _view("side", ContainerState.RUNNING, ready=True, sidecar=True)])
    assert ready == {"init1": False, "side": True}
