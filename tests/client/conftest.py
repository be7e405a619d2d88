"""Fixtures for the client tests: a real in-process API server and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.client.rest import Client
from pykube_server.testing import LocalCluster, local_cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        yield lc


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(cluster.kubeconfig, user_agent="pykube-test/v0.1.0") as c:
        yield c
