"""The kubelet's measurements: /proc parsing, rates, pinned usage, and the Summary document."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from pykube_server.kubelet import stats
from pykube_server.kubelet.runtime import ContainerConfig, SandboxConfig
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.kubelet.runtimes.process import ProcessRuntime


def test_proc_stat_line_with_spaces_and_parens_in_the_name() -> None:
    fields = " ".join(["S", "1", "4242", "4242"] + ["0"] * 7 + ["100", "50", "7", "3"] + ["0"] * 30)
    parsed = stats.parse_proc_stat(f"4243 (a (weird) name) {fields}")
    assert parsed == stats.ProcStat(pid=4243, pgrp=4242, cpu_ticks=160)
    assert stats.parse_proc_stat("garbage") is None


def test_vmrss_meminfo_and_node_cpu() -> None:
    assert stats.parse_vmrss_bytes("Name:\tsh\nVmRSS:\t    1536 kB\n") == 1536 * 1024
    assert stats.parse_vmrss_bytes("Name:\tkthread\n") == 0
    info = stats.parse_meminfo("MemTotal:       16000 kB\nMemAvailable:    4000 kB\nHugePages_Total: 0\n")
    assert info == {"MemTotal": 16000 * 1024, "MemAvailable": 4000 * 1024, "HugePages_Total": 0}
    # user nice system idle iowait irq softirq steal: idle and iowait are not busy
    assert stats.parse_node_cpu_ticks("cpu  10 2 3 1000 50 4 5 6 0 0\ncpu0 1 1 1 1\n") == 30


def test_series_rate_over_the_window_and_never_negative() -> None:
    series = stats.Series(window_seconds=10)
    series.add(stats.Reading(100.0, 0, 1))
    assert series.nano_cores() is None
    series.add(stats.Reading(105.0, 2_500_000_000, 1))  # 2.5 s of CPU in 5 s: half a core
    assert series.nano_cores() == 500_000_000
    series.add(stats.Reading(112.0, 2_500_000_000, 1))
    series.add(stats.Reading(121.0, 3_400_000_000, 1))
    assert series.readings[0].at == 105.0  # older readings beyond the window are dropped
    assert series.nano_cores() == 56_250_000
    series.add(stats.Reading(131.0, 0, 1))  # a member exited unreaped: the counter fell
    assert series.nano_cores() == 0


def test_pinned_usage_annotations() -> None:
    annotations = {stats.SIMULATE_CPU_ANNOTATION: "250m", f"{stats.SIMULATE_MEMORY_ANNOTATION}.app": "64Mi"}
    assert stats.simulated_usage(annotations, "app") == (250_000_000, 64 * 2**20)
    assert stats.simulated_usage(annotations, "sidecar") == (250_000_000, None)
    assert stats.simulated_usage({stats.SIMULATE_CPU_ANNOTATION: "lots"}, "app") == (None, None)


class _Pods:
    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], dict] = {}

    def __call__(self, namespace: str, name: str) -> dict | None:
        return self.pods.get((namespace, name))


async def test_simulated_summary_reports_the_annotations() -> None:
    runtime = FakeRuntime()
    pods = _Pods()
    annotations = {stats.SIMULATE_CPU_ANNOTATION: "300m", stats.SIMULATE_MEMORY_ANNOTATION: "32Mi"}
    pods.pods[("ns", "web")] = {"metadata": {"name": "web", "namespace": "ns", "annotations": annotations},
                                "status": {"startTime": "2026-01-01T00:00:00Z"}}
    sid = await runtime.run_pod_sandbox(SandboxConfig(uid="u1", namespace="ns", name="web"))
    cid = await runtime.create_container(sid, ContainerConfig(name="app", image="busybox", annotations=annotations))
    await runtime.start_container(cid)
    sampler = stats.Sampler("node-1", runtime, pods)
    summary = await sampler.summary()
    assert summary["node"]["nodeName"] == "node-1"
    assert summary["node"]["cpu"]["usageNanoCores"] == 300_000_000  # a simulated node is its pods
    [pod] = summary["pods"]
    assert pod["podRef"] == {"name": "web", "namespace": "ns", "uid": "u1"}
    assert pod["startTime"] == "2026-01-01T00:00:00Z"
    [container] = pod["containers"]
    assert container["name"] == "app"
    assert container["cpu"]["usageNanoCores"] == 300_000_000
    assert container["memory"]["workingSetBytes"] == 32 * 2**20
    await runtime.aclose()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_group_usage_counts_a_busy_process_group() -> None:
    proc = subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=True)
    try:
        time.sleep(0.6)
        cpu, rss = stats.group_usage(stats.process_groups()[proc.pid])
        assert cpu >= 200_000_000  # most of 0.6 s of one core
        assert rss > 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
async def test_process_summary_measures_a_busy_container(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path / "rt")
    pods = _Pods()
    sid = await runtime.run_pod_sandbox(SandboxConfig(uid="u2", namespace="ns", name="burn"))
    cid = await runtime.create_container(sid, ContainerConfig(name="burn", image="busybox",
                                                              command=("sh", "-c", "while :; do :; done")))
    await runtime.start_container(cid)
    try:
        sampler = stats.Sampler("node-1", runtime, pods)
        await sampler.sample()
        await asyncio.sleep(1.2)
        summary = await sampler.summary()
        [pod] = summary["pods"]
        [container] = pod["containers"]
        assert container["cpu"]["usageNanoCores"] > 300_000_000, container
        assert container["memory"]["workingSetBytes"] > 0
        assert summary["node"]["cpu"]["usageNanoCores"] >= container["cpu"]["usageNanoCores"] // 2
        assert summary["node"]["memory"]["workingSetBytes"] > 0
    finally:
        await runtime.aclose(stop=True)
