"""Fixtures shared by the kubelet's runtime tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.kubelet.runtimes.process import ProcessRuntime


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A process runtime in a temporary root; every sandbox it made is removed and every
    container stopped afterwards. (test_runtimes.py runs its contract over both runtimes with
    a fixture of its own.)"""
    rt = ProcessRuntime(tmp_path / "rt")
    try:
        yield rt
    finally:
        for sandbox in await rt.list_pod_sandboxes():
            await rt.remove_pod_sandbox(sandbox.id)
        await rt.aclose(stop=True)
