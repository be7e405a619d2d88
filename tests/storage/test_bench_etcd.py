"""`bench/api.py --storage sqlite,etcd` runs every phase on both stores in one run, at its smallest
size, and reports them side by side (it asserts nothing about speed; this checks the script)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import orjson

from tests.storage.etcd_server import require_etcd

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api.py"


def test_api_bench_runs_on_sqlite_and_etcd_side_by_side(tmp_path: Path) -> None:
    require_etcd()
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--storage", "sqlite,etcd", "--pods", "40",
                           "--configmaps", "40", "--seconds", "0.3", "--watchers", "3", "--watch-writes", "10",
                           "--json", str(out)], capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = orjson.loads(out.read_bytes())
    assert list(figures["by_storage"]) == ["sqlite", "etcd"]
    for name, run in figures["by_storage"].items():
        assert run["configmap_creates"]["ok"] == 40 and run["pod_creates"]["ok"] == 40, (name, run)
        assert run["get"]["rate"] > 0 and run["list"]["pods"] == 40, (name, run)
        assert run["watch"]["delivered"] == run["watch"]["expected"] == 30, (name, run["watch"])
        assert math.isfinite(run["watch"]["p99_ms"])
    assert figures["configmap_creates"] == figures["by_storage"]["sqlite"]["configmap_creates"]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("summary"))
    assert header.split()[1:3] == ["sqlite", "etcd"]
    assert "etcd " in proc.stdout and "[etcd] started a single-member etcd" in proc.stdout
