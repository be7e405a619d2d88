"""`$(VAR)` in a container's command and args is expanded from its environment (kubelet's
ExpandContainerCommandAndArgs): what lets `--bind $(POD_IP)` reach a pod's server."""

from __future__ import annotations

from pykube_server.kubelet.pod_workers import PodWorker
from tests.kubelet.test_pod_workers import env, make_pod  # noqa: F401  (the fixture)


async def test_command_and_args_expand_env_references(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ctx, _, _, _ = env
    pod = make_pod()
    container = pod["spec"]["containers"][0]
    container["command"] = ["serve", "--bind", "$(POD_IP)"]
    container["args"] = ["$(GREETING) $(UNSET)", "$$(GREETING)"]
    container["env"] = [{"name": "GREETING", "value": "hi"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    await PodWorker(ctx, pod).sync()
    (config,) = ctx.runtime._configs.values()
    assert config.command == ("serve", "--bind", "127.244.1.2")
    assert config.args == ("hi $(UNSET)", "$(GREETING)")
