"""The cluster benchmarks run end to end at their smallest sizes and report whole figures.

Benchmarks assert nothing about speed, and neither do these tests: they check that each script
starts its cluster, drives every phase to completion (every pod bound or Running, every
Deployment phase and the namespace deletion finished, the scheduling constraints honoured),
prints its summary table and writes its JSON, so a broken script is found before the lead
spends a quiet machine's hour on it.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parents[2] / "bench"
TIMEOUT_SECONDS = 150


def run_bench(script: str, tmp_path: Path, *flags: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(BENCH / script), *flags, "--json", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "summary" in proc.stdout and "(run took" in proc.stdout, proc.stdout[-3000:]
    return orjson.loads(out.read_bytes()), proc.stdout


def test_scheduler_bench_binds_every_pod_in_all_three_runs(tmp_path: Path) -> None:
    figures, stdout = run_bench("scheduler.py", tmp_path, "--nodes", "12", "--pods", "60", "--zones", "3",
                                "--group-size", "4", "--cap-seconds", "60")
    for run in ("basic", "anti-affinity", "spread"):
        r = figures[run]
        assert (r["bound"], r["failed_creates"], r["violations"]) == (60, 0, 0), (run, r)
        assert math.isfinite(r["p99_s"]) and r["bound_per_second"] > 0, (run, r)
    assert "basic: pods/s bound (60/60)" in stdout


def test_kubelet_bench_runs_every_pod_and_follows_every_lease(tmp_path: Path) -> None:
    figures, stdout = run_bench("kubelet.py", tmp_path, "--nodes", "8", "--pods", "40", "--rate", "40",
                                "--lease-window", "2", "--cap-seconds", "60")
    pods, leases = figures["pods"], figures["leases"]
    assert (pods["running"], pods["failed_creates"]) == (40, 0), pods
    assert math.isfinite(pods["p99_s"]) and pods["bind_p99_s"] <= pods["p99_s"], pods
    assert leases["leases"] == 8 and math.isfinite(leases["max_gap_s"]), leases
    assert "late Leases (8 over" in stdout


def test_controllers_bench_completes_rollout_and_namespace_deletion(tmp_path: Path) -> None:
    figures, stdout = run_bench("controllers.py", tmp_path, "--nodes", "4", "--replicas", "20", "--objects", "30",
                                "--cap-seconds", "60")
    deployment, namespace = figures["deployment"], figures["namespace"]
    assert math.isfinite(deployment["available_s"]) and math.isfinite(deployment["rollout_s"]), deployment
    assert namespace["objects"] == 30 and math.isfinite(namespace["delete_s"]), namespace
    assert "namespace of 30 objects: until deleted" in stdout


def test_proxy_bench_measures_both_paths_and_endpoint_readiness(tmp_path: Path) -> None:
    figures, stdout = run_bench("proxy.py", tmp_path, "--seconds", "0.6", "--connections", "4", "--rounds", "2",
                                "--ready-trials", "2")
    for run in ("keepalive_direct", "keepalive_proxy", "newconn_direct", "newconn_proxy"):
        r = figures[run]
        assert r["requests"] > 0 and r["errors"] == 0 and math.isfinite(r["p99_ms"]), (run, r)
    assert set(figures["keepalive_direct"]["answered"]) == {"pod-0"}
    assert set(figures["keepalive_proxy"]["answered"]) == {"pod-0", "pod-1", "pod-2"}  # spread over the 3 pods
    assert len(figures["ready_to_traffic_s"]) == 2 and all(d > 0 for d in figures["ready_to_traffic_s"])
    assert "keep-alive: through the ClusterIP" in stdout and "endpoint ready -> traffic" in stdout
