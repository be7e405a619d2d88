"""Helpers shared by the reproduced upstream conformance tests.

Every test function carries `@conformance("<exact upstream codename>")`. A test that cannot pass
yet also carries `@missing("<capability pykube lacks>")`, which is a strict xfail: the day the
capability lands the test XPASSes, fails the run, and the marker has to go.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "conformance"
UPSTREAM_LIST = Path(os.environ.get("PYKUBE_CONFORMANCE_LIST", SHARED / "upstream-conformance.yaml"))
CLASSIFICATION = Path(os.environ.get("PYKUBE_CONFORMANCE_CLASSIFICATION", SHARED / "classification.tsv"))

F = TypeVar("F", bound=Callable[..., Any])


def conformance(codename: str) -> Callable[[F], F]:
    """Mark a test as the reproduction of one upstream conformance test."""
    return pytest.mark.conformance(codename=codename)  # type: ignore[return-value]


def missing(capability: str) -> Callable[[F], F]:
    """A strict expected failure that names what pykube lacks."""
    return pytest.mark.xfail(strict=True, reason=f"missing: {capability}")  # type: ignore[return-value]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; exceptions count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except AssertionError as exc:  # noqa: PERF203 - polling
            last = exc
        except Exception as exc:  # noqa: BLE001
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {last!r}" if last else ""))
        time.sleep(interval)


def api_status(exc: BaseException) -> int:
    return int(getattr(exc, "status", 0) or 0)


def expect_status(status: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn` and assert it fails with the given HTTP status; returns the ApiException."""
    from kubernetes.client.exceptions import ApiException

    try:
        fn(*args, **kwargs)
    except ApiException as exc:
        assert exc.status == status, f"expected HTTP {status}, got {exc.status}: {exc.body}"
        return exc
    raise AssertionError(f"expected HTTP {status}, the call succeeded")


def load_upstream() -> list[dict[str, Any]]:
    import yaml

    if not UPSTREAM_LIST.exists():
        return []
    return list(yaml.safe_load(UPSTREAM_LIST.read_text()))


def load_classification() -> dict[str, dict[str, str]]:
    import csv

    if not CLASSIFICATION.exists():
        return {}
    with CLASSIFICATION.open(newline="") as fh:
        return {row["codename"]: row for row in csv.DictReader(fh, delimiter="\t")}


class RawResponse:
    def __init__(self, status: int, headers: Any, data: bytes) -> None:
        self.status, self.headers, self.data = status, headers, data

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def json(self) -> Any:
        import json

        return json.loads(self.data)


def raw(api: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
        query: list[tuple[str, Any]] | dict[str, Any] | None = None, timeout: float | None = 30) -> RawResponse:
    """A request over the official client's connection pool and credentials, byte-exact: `body` may be
    bytes/str (sent as is, e.g. JSON with duplicate keys or YAML) or an object (sent as JSON)."""
    import json

    hdrs = {"Accept": "application/json", **(headers or {})}
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if body is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    if isinstance(query, dict):
        query = list(query.items())
    method, url, hdrs, _, _ = api.param_serialize(method, path, query_params=query or None, header_params=hdrs,
                                                  auth_settings=["BearerToken"])
    if isinstance(body, str):
        body = body.encode()
    response = api.rest_client.pool_manager.request(method, url, body=body, headers=hdrs, timeout=timeout,
                                                    preload_content=True)
    return RawResponse(response.status, response.headers, response.data)
