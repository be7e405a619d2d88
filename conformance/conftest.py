"""Fixtures for the reproduced upstream conformance tests.

A session starts one fresh cluster (`pykube-server up --nodes 2`), unless
`--conformance-kubeconfig PATH` (or `PYKUBE_CONFORMANCE_KUBECONFIG`) points at a running one.
Each test gets its own namespace (`ns`), deleted afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.harness import load_upstream

KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--conformance-kubeconfig", default=os.environ.get("PYKUBE_CONFORMANCE_KUBECONFIG", ""),
                    help="run the conformance tests against the cluster of this kubeconfig instead of starting one")
    group.addoption("--conformance-progress", action="store_true",
                    help="print PASS/FAIL/XFAIL/XPASS/SKIP and the upstream codename for each test as it ends")


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG["config"] = config
    config.addinivalue_line("markers", "conformance(codename): reproduction of the named upstream conformance test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Record each test's upstream codename in the junit XML and refuse unknown or duplicate codenames."""
    known = {entry["codename"] for entry in load_upstream()}
    seen: dict[str, str] = {}
    for item in items:
        marker = item.get_closest_marker("conformance")
        if marker is None:
            continue
        codename = marker.kwargs["codename"]
        if known and codename not in known:
            raise pytest.UsageError(f"{item.nodeid}: not an upstream conformance codename: {codename!r}")
        if codename in seen:
            raise pytest.UsageError(f"{item.nodeid} and {seen[codename]} both claim {codename!r}")
        seen[codename] = item.nodeid
        item.user_properties.append(("codename", codename))


def _outcome(report: pytest.TestReport) -> str | None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            return "XFAIL" if report.skipped else "XPASS"
        return {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[report.outcome]
    if report.when == "teardown" and report.failed:
        return "FAIL"
    return None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):  # type: ignore[no-untyped-def]
    """With --conformance-progress the per-test line replaces pytest's dots."""
    if config.getoption("--conformance-progress", False) and "codename" in dict(getattr(report, "user_properties", ())):
        if report.when == "call" or not report.passed:
            outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            return outcome, "", outcome.upper()
        return "", "", ""
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = _CONFIG.get("config")
    if config is None or not config.getoption("--conformance-progress", False):
        return
    codename = dict(getattr(report, "user_properties", ())).get("codename")
    outcome = _outcome(report)
    if codename and outcome:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        extra = ""
        if outcome == "XFAIL":
            extra = f"  ({report.wasxfail.removeprefix('reason: ')})"
        elif outcome in ("FAIL", "XPASS") and report.longrepr is not None:
            lines = [ln for ln in str(report.longrepr).splitlines() if ln.startswith("E  ")]
            extra = "  -- " + (lines[0][1:].strip() if lines else str(report.longrepr).splitlines()[-1])[:200]
        if tr is not None:
            tr.ensure_newline()
            tr.write_line(f"{outcome:5} {codename}{extra}")


_CONFIG: dict[str, pytest.Config] = {}


@dataclass
class Cluster:
    kubeconfig: Path
    home: Path
    server: Any = None
    _client: Any = field(default=None, repr=False)

    @property
    def client(self):  # type: ignore[no-untyped-def]
        """One shared official-client ApiClient for the session."""
        if self._client is None:
            from kubernetes import config

            self._client = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._client

    def new_client(self):  # type: ignore[no-untyped-def]
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)}
        result = subprocess.run([KUBECTL, *args], capture_output=True, text=True, input=input, env=env,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("conformance-home")
    given = request.config.getoption("--conformance-kubeconfig")
    if given:
        yield Cluster(Path(given), home)
        return
    from tests.conftest import start_server

    server = start_server(tmp_path_factory.mktemp("conformance-cluster"), "--nodes", "2",
                          "--service-cluster-ip-range", "127.98.0.0/16", "--pod-cidr", "127.246.0.0/16",
                          "--load-balancer-ip-range", "127.242.0.0/16",
                          # a minute of watch history, not five: the chunking-after-compaction test
                          # waits for a continue token to expire
                          "--watch-history-seconds", "60", "--compaction-interval-seconds", "5")
    try:
        yield Cluster(server.kubeconfig, home, server)
    finally:
        server.stop()


@pytest.fixture
def api(cluster: Cluster):  # type: ignore[no-untyped-def]
    """The shared ApiClient of the official `kubernetes` client."""
    return cluster.client


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(cluster.client)
    name = f"cf-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"e2e-framework": "conformance"}}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
