"""The proxy tests' API server: in-process, memory storage, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.testing import LocalCluster, local_cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        yield lc
