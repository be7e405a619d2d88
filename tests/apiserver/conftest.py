"""API-semantics tests run against the API server alone (see `api_cluster` in tests/conftest.py):
exact lists and watches must not see objects that controllers add in a full cluster."""

from __future__ import annotations

import pytest

from tests.conftest import ServerProcess


@pytest.fixture
def cluster(api_cluster: ServerProcess) -> ServerProcess:
    return api_cluster


@pytest.fixture
def namespace(api_namespace: str) -> str:
    return api_namespace
