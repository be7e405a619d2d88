"""A raw HTTPS client for the REST tests, and its own smoke tests.

Why raw: the official client hides status codes, headers (`Warning`), chunking and exact error
bodies behind its models, and these tests are about exactly those wire details. The client
authenticates with the admin client certificate from the kubeconfig `up` wrote, as kubectl
does, using only `ssl` and `http.client`.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from tests.conftest import ServerProcess


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def warnings(self) -> list[str]:
        return self.headers.get_all("Warning") or []

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


class Raw:
    """Plain requests to a running pykube server, authenticated like kubectl."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        url = urlsplit(cluster["server"])
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self._dir = tempfile.mkdtemp(prefix="raw-client-")
        files = {}
        for name, field in (("ca", "certificate-authority-data"), ("crt", "client-certificate-data"),
                            ("key", "client-key-data")):
            path = Path(self._dir) / name
            path.write_bytes(base64.b64decode(cluster.get(field) or user.get(field)))
            files[name] = str(path)
        self.ctx = ssl.create_default_context(cafile=files["ca"])
        self.ctx.load_cert_chain(files["crt"], files["key"])

    def connect(self, timeout: float = 30.0) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, *, query: dict[str, Any] | None = None,
                content_type: str | None = "application/json", headers: dict[str, str] | None = None,
                timeout: float = 30.0) -> Response:
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query)
        data: bytes | None
        if body is None or isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        hdrs = {"Accept": "application/json", **(headers or {})}
        if content_type and data is not None:
            hdrs["Content-Type"] = content_type
        conn = self.connect(timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Response:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Response:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json", **kw: Any) -> Response:
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("DELETE", path, body, **kw)

    def watch(self, path: str, query: dict[str, Any] | None = None, *, timeout: float = 15.0) -> WatchStream:
        query = {"watch": "true", **(query or {})}
        conn = self.connect(timeout)
        conn.request("GET", path + "?" + urlencode(query), headers={"Accept": "application/json"})
        resp = conn.getresponse()
        return WatchStream(conn, resp)


class WatchStream:
    """One watch response, read event by event (one JSON document per line)."""

    def __init__(self, conn: http.client.HTTPSConnection, resp: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers

    def next(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The next event, or None when the stream ended cleanly."""
        sock = self.conn.sock
        if sock is not None:
            sock.settimeout(timeout)
        line = self.resp.readline()
        if not line:
            return None
        assert line.endswith(b"\n"), line
        return json.loads(line)

    def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only {len(out)} of {count} events: {out}")
            event = self.next(left)
            if event is None:
                raise AssertionError(f"stream ended after {len(out)} of {count} events: {out}")
            out.append(event)
        return out

    def rest(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Everything until the server ends the stream (which must happen within `timeout`)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(deadline - time.monotonic(), 0.01))
            if event is None:
                return out
            out.append(event)

    def close(self) -> None:
        try:
            if self.conn.sock is not None:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def cm_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps" + (f"/{name}" if name else "")


def status_of(resp: Response) -> dict[str, Any]:
    body = resp.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["code"] == resp.status, body
    return body


def event_summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"].get("metadata", {}).get("name", "")) for e in events]


def iter_names(items: list[dict[str, Any]]) -> Iterator[str]:
    for item in items:
        yield item["metadata"]["name"]


# -- the helper's own checks ---------------------------------------------------------------------

def test_raw_client_authenticates_with_the_admin_certificate(cluster: ServerProcess) -> None:
    raw = Raw(cluster.kubeconfig)
    resp = raw.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert resp.status == 201, resp
    assert "system:masters" in resp.json()["status"]["userInfo"]["groups"]


def test_status_body_shape_for_not_found(cluster: ServerProcess, namespace: str) -> None:
    resp = Raw(cluster.kubeconfig).get(cm_path(namespace, "nope"))
    assert resp.status == 404
    assert status_of(resp) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "kind": "configmaps"}, "code": 404}
