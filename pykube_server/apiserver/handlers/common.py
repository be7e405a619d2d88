"""What every resource handler needs: the resolved resource, query parsing, responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from pykube_server.api import errors
from pykube_server.apiserver import authn
from pykube_server.apiserver.admission import Attributes, Chain, RequestAdmission
from pykube_server.apiserver.negotiation import Output, choose_output, encode
from pykube_server.apiserver.requestinfo import RequestInfo
from pykube_server.registry.spec import ResourceSpec
from pykube_server.registry.store import ResourceStore


@dataclass(slots=True)
class Call:
    """One resource request, resolved."""

    request: web.Request
    info: RequestInfo
    spec: ResourceSpec
    store: ResourceStore
    output: Output
    chain: Chain | None = None
    """The server's admission chain (None: writes are not admitted)."""

    @property
    def namespace(self) -> str:
        return self.info.namespace if self.spec.namespaced else ""

    def query(self, name: str, default: str = "") -> str:
        return self.request.query.get(name, default)

    def int_query(self, name: str, default: int = 0) -> int:
        value = self.request.query.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError:
            raise errors.BadRequest(f'invalid value "{value}" for {name}') from None

    def bool_query(self, name: str) -> bool | None:
        value = self.request.query.get(name)
        if value is None:
            return None
        return value.lower() in ("true", "1")

    def admission(self, dry_run: bool = False) -> RequestAdmission | None:
        """This request's admission, for the store to call (operation and objects come later)."""
        if self.chain is None:
            return None
        base = Attributes(operation="", group=self.spec.group, version=self.spec.version, resource=self.spec.plural,
                          subresource=self.info.subresource, kind=self.spec.kind, namespace=self.namespace,
                          name=self.info.name, user=self.request.get(authn.USER) or authn.ANONYMOUS,
                          dry_run=dry_run or self.dry_run)
        return RequestAdmission(self.chain, base)

    @property
    def dry_run(self) -> bool:
        values = self.request.query.getall("dryRun", [])
        for v in values:
            if v != "All":
                raise errors.BadRequest(f'Invalid dryRun: "{v}": supported values: "All"')
        return bool(values)


def make_call(request: web.Request, info: RequestInfo, spec: ResourceSpec, store: ResourceStore,
              chain: Chain | None = None) -> Call:
    return Call(request, info, spec, store, choose_output(request.headers.get("Accept", "")), chain)


def respond(call: Call, value: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    body, content_type = encode(value, call.output)
    return raw_response(body, content_type, status, warnings)


def raw_response(body: bytes, content_type: str = "application/json", status: int = 200,
                 warnings: list[str] | None = None) -> web.Response:
    """An API object's response. A JSON body ends with a newline, as kube-apiserver's encoder
    (Go's json.Encoder) writes it: clients that compare error bodies verbatim see the same
    bytes."""
    if content_type.startswith("application/json") and not body.endswith(b"\n"):
        body += b"\n"
    resp = web.Response(body=body, status=status, content_type=content_type)
    for w in warnings or ():
        resp.headers.add("Warning", '299 - ' + orjson.dumps(w).decode())
    return resp


def success_status(details: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
