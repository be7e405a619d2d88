"""The controllers' tests run each controller against an in-process API server on memory
storage (`pykube_server.testing.local_cluster`): this is that cluster, one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.testing import LocalCluster, local_cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        yield lc
