"""A small extension API server (the sample-apiserver's `wardle` group) for aggregation tests.

HTTPS on 127.0.0.1 with a serving certificate from a throwaway CA (the APIService's caBundle),
requesting a client certificate it verifies against the front-proxy CA that kube-apiserver
publishes in `kube-system/extension-apiserver-authentication`, and believing the X-Remote-*
headers only from a verified `front-proxy-client`, as k8s.io/apiserver's requestheader
authenticator does. Serves discovery for `wardle.example.com/v1alpha1` and a read-only
`flunders` resource (list, get, watch), recording who asked.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.apiserver.webhook_support import ThreadedServer, WebhookCA

VERSION = "v1alpha1"


class ExtensionServer(ThreadedServer):
    def __init__(self, ca: WebhookCA, front_proxy_ca_pem: str, group: str, service_host: str) -> None:
        super().__init__()
        self.ca = ca
        self.front_proxy_ca_pem = front_proxy_ca_pem
        self.group = group
        self.service_host = service_host
        self.requests: list[dict[str, Any]] = []
        self.flunders: dict[tuple[str, str], dict[str, Any]] = {}

    def add_flunder(self, namespace: str, name: str) -> None:
        self.flunders[(namespace, name)] = {
            "apiVersion": f"{self.group}/{VERSION}", "kind": "Flunder",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": "1",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"reference": "sample"}}

    async def _start(self) -> None:
        cert, key = self.ca.issue(self.service_host, "127.0.0.1")
        directory = Path(tempfile.mkdtemp(prefix="extension-apiserver-"))
        (directory / "tls.crt").write_bytes(cert)
        (directory / "tls.key").write_bytes(key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        ctx.load_verify_locations(cadata=self.front_proxy_ca_pem)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        app = web.Application()
        app.router.add_get("/apis/{group}/{version}/namespaces/{namespace}/flunders/{name}/echo", self._echo)
        app.router.add_get("/{tail:.*}", self._handle)
        app.router.add_post("/{tail:.*}", self._create)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _identity(self, request: web.Request) -> dict[str, Any] | None:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = {k: v for rdn in (peer or {}).get("subject", ()) for k, v in rdn}
        if subject.get("commonName") != "front-proxy-client":
            return None
        return {"user": request.headers.get("X-Remote-User"), "groups": request.headers.getall("X-Remote-Group", []),
                "extra": {k: v for k, v in request.headers.items() if k.lower().startswith("x-remote-extra-")}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        identity = self._identity(request)
        self.requests.append({"path": request.path, "query": dict(request.query), "identity": identity,
                              "authorization": request.headers.get("Authorization")})
        if identity is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized",
                                      "message": "Unauthorized", "code": 401}, status=401)
        base = f"/apis/{self.group}/{VERSION}"
        if request.path == "/openapi/v3":
            return web.json_response({"paths": {f"apis/{self.group}/{VERSION}": {
                "serverRelativeURL": f"/openapi/v3/apis/{self.group}/{VERSION}?hash=F1A2"}}})
        if request.path == f"/openapi/v3{base}":
            return web.json_response(self._openapi())
        parts = request.path[len(base):].strip("/").split("/") if request.path.startswith(base) else None
        if parts == [""]:
            return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{self.group}/{VERSION}",
                                      "resources": [{"name": "flunders", "singularName": "flunder", "namespaced": True,
                                                     "kind": "Flunder", "verbs": ["get", "list", "watch"],
                                                     "shortNames": ["fl"]}]})
        if parts and len(parts) >= 3 and parts[0] == "namespaces" and parts[2] == "flunders":
            namespace = parts[1]
            if len(parts) == 4:
                item = self.flunders.get((namespace, parts[3]))
                if item is None:
                    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                              "message": f'flunders.{self.group} "{parts[3]}" not found', "code": 404,
                                              "details": {"name": parts[3], "group": self.group, "kind": "flunders"}},
                                             status=404)
                return web.json_response(item)
            items = [v for (ns, _), v in sorted(self.flunders.items()) if ns == namespace]
            if request.query.get("watch") in ("1", "true"):
                return await self._watch(request, items)
            return web.json_response({"kind": "FlunderList", "apiVersion": f"{self.group}/{VERSION}",
                                      "metadata": {"resourceVersion": "1"}, "items": items})
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                  "message": "the server could not find the requested resource", "code": 404}, status=404)

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        """A WebSocket subresource: says who is there, then echoes binary frames upper-cased."""
        identity = self._identity(request)
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io",))
        await ws.prepare(request)
        await ws.send_str(f"hello {identity['user'] if identity else 'stranger'}")
        async for msg in ws:
            if msg.type == web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data.upper())
        return ws

    async def _create(self, request: web.Request) -> web.Response:
        """POST of a flunder: stored as sent, answered 201 with the object."""
        identity = self._identity(request)
        body = await request.json()
        self.requests.append({"path": request.path, "query": dict(request.query), "identity": identity,
                              "authorization": request.headers.get("Authorization"), "body": json.loads(json.dumps(body))})
        namespace = request.path.split("/")[5]
        body.setdefault("metadata", {})["namespace"] = namespace
        self.flunders[(namespace, body["metadata"]["name"])] = body
        return web.json_response(body, status=201)

    def _openapi(self) -> dict[str, Any]:
        """A minimal OpenAPI v3 document: what `kubectl explain` needs (a path whose operation
        names the kind, and the kind's schema)."""
        gvk = {"group": self.group, "version": VERSION, "kind": "Flunder"}
        schema = "com.example.wardle.v1alpha1.Flunder"
        return {"openapi": "3.0.0", "info": {"title": "wardle", "version": "v0"},
                "paths": {f"/apis/{self.group}/{VERSION}/namespaces/{{namespace}}/flunders/{{name}}": {
                    "get": {"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk,
                            "responses": {"200": {"description": "OK", "content": {"application/json": {
                                "schema": {"$ref": f"#/components/schemas/{schema}"}}}}}}}},
                "components": {"schemas": {schema: {
                    "description": "A flunder of the sample API server.", "type": "object",
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "metadata": {"type": "object"},
                                   "spec": {"description": "What the flunder refers to.", "type": "object",
                                            "properties": {"reference": {"description": "The referenced name.",
                                                                         "type": "string"}}}},
                    "x-kubernetes-group-version-kind": [gvk]}}}}

    async def _watch(self, request: web.Request, items: list[dict[str, Any]]) -> web.StreamResponse:
        """ADDED for each flunder, one event at a time with a pause between: shows streaming."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for item in items:
            await resp.write(json.dumps({"type": "ADDED", "object": item}).encode() + b"\n")
            await asyncio.sleep(0.3)
        await resp.write_eof()
        return resp
