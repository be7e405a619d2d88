"""The REST client every component uses: plain dicts over one `aiohttp.ClientSession`.

Why this shape: the components must be indistinguishable from real ones to the API server, so
the client speaks exactly the wire protocol client-go speaks (URL layout, query parameters,
patch content types, DeleteOptions bodies, chunked watch streams) and nothing else. Objects stay
decoded JSON dicts (orjson), so unknown fields round-trip.

* A resource is addressed by a `Resource(group, version, plural, namespaced)` value.
* Error responses are rebuilt into the `pykube_server.api.errors` classes from their `Status`
  body, so callers catch `errors.NotFound` or `errors.Conflict` as the server raised them.
  Failures below HTTP (refused connections, resets, timeouts) raise `TransportError`.
* Every request, watches included, first takes a token from a QPS/burst token bucket, as
  client-go's `rest.Config` throttle does; a 429 or 5xx carrying `Retry-After` is retried after
  that many seconds (up to `max_retries` times), as client-go's request retry does.
* `watch()` yields decoded `{"type", "object"}` events; in-stream `ERROR` events are yielded
  as they come (the informer turns a 410 one into a relist).
"""

from __future__ import annotations

import asyncio
import builtins
import enum
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.config import ClientConfig, load_kubeconfig
from pykube_server.client.ratelimit import TokenBucket

log = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 10
"""Retries of a 429/5xx answer that carries Retry-After (client-go's default is 10 too)."""


class PatchType(str, enum.Enum):
    """The four patch flavours, by the Content-Type that selects them."""

    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


@dataclass(frozen=True, slots=True)
class Resource:
    """A group/version/resource and whether its objects live in namespaces."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """`/api/v1/namespaces/ns/pods/name/status`-style path (namespace ignored if cluster-scoped)."""
        parts = ["/api", self.version] if not self.group else ["/apis", self.group, self.version]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")
CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
EVENTS = Resource("", "v1", "events")
PERSISTENTVOLUMES = Resource("", "v1", "persistentvolumes", namespaced=False)
PERSISTENTVOLUMECLAIMS = Resource("", "v1", "persistentvolumeclaims")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
REPLICASETS = Resource("apps", "v1", "replicasets")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
DAEMONSETS = Resource("apps", "v1", "daemonsets")
CONTROLLERREVISIONS = Resource("apps", "v1", "controllerrevisions")
JOBS = Resource("batch", "v1", "jobs")
CRONJOBS = Resource("batch", "v1", "cronjobs")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
ENDPOINTSLICES = Resource("discovery.k8s.io", "v1", "endpointslices")


class TransportError(Exception):
    """The request did not get an HTTP answer (connection refused or reset, TLS, timeout)."""


_GENERIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource version is too old"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


def error_from_response(status: int, body: bytes) -> errors.StatusError:
    """The API error for an HTTP error answer: from its Status body, else from the code alone."""
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return errors.StatusError.from_status({**doc, "code": doc.get("code") or status})
    reason, message = _GENERIC_ERRORS.get(status, ("InternalError", "an error on the server has prevented the request from succeeding"))
    text = body.decode("utf-8", "replace").strip()
    return errors.StatusError.from_status({"code": status, "reason": reason, "message": text or message})


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    if resp.status != 429 and resp.status < 500:
        return None
    value = resp.headers.get("Retry-After", "")
    try:
        return max(float(int(value)), 0.0)
    except ValueError:
        return None


def _query(**params: Any) -> dict[str, str]:
    """Query parameters with empty values dropped and booleans as `true`/`false`."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "" or value is False and key != "allowWatchBookmarks":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _delete_options(*, preconditions: Mapping[str, str] | None, propagation_policy: str,
                    grace_period_seconds: int | None, dry_run: bool) -> Obj:
    body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        body["preconditions"] = dict(preconditions)
    if propagation_policy:
        body["propagationPolicy"] = propagation_policy
    if dry_run:
        body["dryRun"] = ["All"]
    return body


class Client:
    """Async Kubernetes REST client. Use as `async with Client(config) as client:`.

    One instance is shared by every informer and controller of a component; it is safe for
    concurrent use by many tasks of one event loop. `aclose()` is idempotent.
    """

    def __init__(self, config: ClientConfig, *, clock: Clock = REAL_CLOCK,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.config = config
        self._clock = clock
        self._max_retries = max_retries
        self._throttle = TokenBucket(config.qps, config.burst, clock=clock)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @classmethod
    def from_kubeconfig(cls, path: str | Path, *, context: str = "", clock: Clock = REAL_CLOCK,
                        **overrides: Any) -> Client:
        return cls(load_kubeconfig(path, context=context, **overrides), clock=clock)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def namespace(self) -> str:
        """The kubeconfig context's namespace (what kubectl uses when none is given)."""
        return self.config.namespace

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("client is closed")
        if self._session is None:
            headers = {"User-Agent": self.config.user_agent, "Accept": "application/json"}
            if self.config.token:
                headers["Authorization"] = f"Bearer {self.config.token}"
            # no connection limit: every informer holds one watch open for minutes
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context() or False, limit=0)
            self._session = aiohttp.ClientSession(self.config.server, headers=headers, connector=connector,
                                                  json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    # --- raw requests ------------------------------------------------------------------------

    async def _send(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    body: bytes | None = None, content_type: str = "application/json",
                    timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """The successful response (the caller releases it); raises StatusError, TransportError."""
        session = self._session_or_new()
        headers = {"Content-Type": content_type} if body is not None else {}
        timeout = timeout or aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        attempt = 0
        while True:
            await self._throttle.wait()
            try:
                resp = await session.request(method, path, params=params, data=body, headers=headers, timeout=timeout)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                raise TransportError(f"{method} {path}: {exc!r}") from exc
            if resp.status < 400:
                return resp
            delay = _retry_after(resp)
            if delay is None or attempt >= self._max_retries:
                async with resp:
                    raise error_from_response(resp.status, await resp.read())
            resp.release()
            attempt += 1
            log.debug("%s %s answered %d; retrying in %ss", method, path, resp.status, delay)
            await self._clock.sleep(delay)

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        """Any request by path (subresources such as binding, eviction, status, scale).

        `body` is encoded as JSON unless it is bytes. Returns the decoded JSON answer (None when
        the answer is empty). Raises the api.errors classes, or TransportError.
        """
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        resp = await self._send(method, path, params=params, body=data, content_type=content_type)
        try:
            async with resp:
                raw = await resp.read()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise TransportError(f"{method} {path}: {exc!r}") from exc
        return orjson.loads(raw) if raw else None

    # --- verbs -------------------------------------------------------------------------------

    def _ns(self, resource: Resource, namespace: str, obj: Obj | None = None) -> str:
        if not resource.namespaced:
            return ""
        if namespace:
            return namespace
        return ((obj or {}).get("metadata") or {}).get("namespace") or self.config.namespace

    async def get(self, resource: Resource, name: str, *, namespace: str = "", resource_version: str = "",
                  subresource: str = "") -> Obj:
        path = resource.path(namespace=self._ns(resource, namespace), name=name, subresource=subresource)
        result: Obj = await self.request("GET", path, params=_query(resourceVersion=resource_version))
        return result

    async def list(self, resource: Resource, *, namespace: str = "", label_selector: str = "",
                   field_selector: str = "", limit: int = 0, continue_: str = "", resource_version: str = "",
                   resource_version_match: str = "") -> Obj:
        """One page of the list (`namespace=""` lists across all namespaces)."""
        ns = namespace if resource.namespaced else ""
        params = _query(labelSelector=label_selector, fieldSelector=field_selector, limit=limit or None,
                        resourceVersion=resource_version, resourceVersionMatch=resource_version_match,
                        **{"continue": continue_})
        result: Obj = await self.request("GET", resource.path(namespace=ns), params=params)
        return result

    async def create(self, resource: Resource, obj: Obj, *, namespace: str = "", name: str = "",
                     subresource: str = "", dry_run: bool = False, field_manager: str = "") -> Obj:
        """POST `obj`; with `name` and `subresource`, POST to that subresource (binding, eviction)."""
        path = resource.path(namespace=self._ns(resource, namespace, obj), name=name, subresource=subresource)
        params = _query(dryRun="All" if dry_run else None, fieldManager=field_manager)
        result: Obj = await self.request("POST", path, params=params, body=obj)
        return result

    async def update(self, resource: Resource, obj: Obj, *, subresource: str = "", dry_run: bool = False,
                     field_manager: str = "") -> Obj:
        """PUT `obj` (its metadata.resourceVersion makes it a compare-and-swap)."""
        name = obj["metadata"]["name"]
        path = resource.path(namespace=self._ns(resource, "", obj), name=name, subresource=subresource)
        params = _query(dryRun="All" if dry_run else None, fieldManager=field_manager)
        result: Obj = await self.request("PUT", path, params=params, body=obj)
        return result

    async def patch(self, resource: Resource, name: str, patch: Obj | builtins.list[Any], *, namespace: str = "",
                    patch_type: PatchType = PatchType.MERGE, subresource: str = "", field_manager: str = "",
                    force: bool | None = None, dry_run: bool = False) -> Obj:
        """PATCH with the given type; server-side apply needs a field manager (the user agent's
        component name is used when none is given)."""
        if patch_type is PatchType.APPLY and not field_manager:
            field_manager = self.config.user_agent.split("/", 1)[0]
        path = resource.path(namespace=self._ns(resource, namespace), name=name, subresource=subresource)
        params = _query(fieldManager=field_manager, force=force, dryRun="All" if dry_run else None)
        result: Obj = await self.request("PATCH", path, params=params, body=patch, content_type=patch_type.value)
        return result

    async def delete(self, resource: Resource, name: str, *, namespace: str = "",
                     preconditions: Mapping[str, str] | None = None, propagation_policy: str = "",
                     grace_period_seconds: int | None = None, dry_run: bool = False) -> Obj:
        """DELETE; returns what the server answers (the object, or a Success Status).

        `preconditions` takes `uid` and/or `resourceVersion`; a mismatch raises Conflict.
        """
        body = _delete_options(preconditions=preconditions, propagation_policy=propagation_policy,
                               grace_period_seconds=grace_period_seconds, dry_run=dry_run)
        path = resource.path(namespace=self._ns(resource, namespace), name=name)
        result: Obj = await self.request("DELETE", path, body=body)
        return result

    async def watch(self, resource: Resource, *, namespace: str = "", label_selector: str = "",
                    field_selector: str = "", resource_version: str = "", allow_bookmarks: bool = True,
                    timeout_seconds: int | None = None) -> AsyncIterator[Obj]:
        """Decoded watch events until the server ends the stream.

        Raises StatusError if the watch is refused, TransportError if the connection breaks.
        Close it early with `contextlib.aclosing(...)` (or by cancelling the consumer).
        """
        ns = namespace if resource.namespaced else ""
        params = _query(watch=True, labelSelector=label_selector, fieldSelector=field_selector,
                        resourceVersion=resource_version, allowWatchBookmarks=allow_bookmarks,
                        timeoutSeconds=timeout_seconds)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.timeout_seconds)
        resp = await self._send("GET", resource.path(namespace=ns), params=params, timeout=timeout)
        try:
            async for event in _decode_lines(resp):
                yield event
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise TransportError(f"watch {resource.path(namespace=ns)}: {exc!r}") from exc
        finally:
            resp.close()


async def _decode_lines(resp: aiohttp.ClientResponse) -> AsyncIterator[Obj]:
    """Split a chunked stream into newline-terminated JSON documents (no line length limit)."""
    buf = bytearray()
    async for chunk in resp.content.iter_any():
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            line = bytes(buf[start:end]).strip()
            start = end + 1
            if line:
                yield orjson.loads(line)
        del buf[:start]
    if bytes(buf).strip():
        yield orjson.loads(bytes(buf))
