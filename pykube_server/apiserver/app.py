"""The API server: settings in, a running aiohttp application out.

Request flow: request info -> authentication (middleware) -> authorization -> the generic
handler for the verb -> the resource's ResourceStore -> storage. Non-resource paths
(discovery, /version, health) are answered from documents built once at start-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from pykube_server.api import errors
from pykube_server.apiserver import audit, authn, authz, encryption, limits, impersonation, metrics, reviews
from pykube_server.apiserver.rbac import bootstrap as rbac_bootstrap
from pykube_server.apiserver.rbac import modes as authz_modes
from pykube_server.apiserver.rbac.escalation import EscalationCheck
from pykube_server.apiserver.admission import Chain, build_chain
from pykube_server.apiserver.aggregation import Aggregator
from pykube_server.apiserver.bootstraptoken import BootstrapTokenAuthenticator
from pykube_server.apiserver.crdserving import CRDServing
from pykube_server.apiserver.discovery import AGGREGATED_V2, AGGREGATED_V2BETA1, Discovery, wants_aggregated
from pykube_server.apiserver.handlers import eviction
from pykube_server.apiserver.handlers import portforward, proxy, read, streamproxy, tokenrequest, watch, write
from pykube_server.apiserver.handlers.common import Call, make_call, raw_response
from pykube_server.apiserver.negotiation import content_type_of, decode_body
from pykube_server.apiserver.openapi import OpenAPI, serve_openapi
from pykube_server.apiserver.requestinfo import RequestInfo, parse_request_info
from pykube_server.apiserver.serviceaccount import ServiceAccounts
from pykube_server.apiserver.bootstrap_services import bootstrap_kubernetes_service
from pykube_server.registry.ipallocator import IPRange
from pykube_server.registry.kinds import ServiceStrategy, strategy_for
from pykube_server.registry.portallocator import PortRange
from pykube_server.registry.allocrepair import REPAIR_INTERVAL_SECONDS, AllocationRepair
from pykube_server.registry.allocstore import AllocatingStore
from pykube_server.registry.serviceclaims import ServiceClaims
from pykube_server.registry.servicealloc import ServiceAllocator
from pykube_server.registry.sharedstorage import ConvertedResourceStore, conversion_for
from pykube_server.registry.resources import RESOURCES, preferred_versions
from pykube_server.registry.spec import ResourceSpec
from pykube_server.registry.store import ResourceStore
from pykube_server.storage.backend import Backend
from pykube_server.storage.cacher import Cacher
from pykube_server.storage.compactor import run_compactor
from pykube_server.storage.transformer import TransformingBackend
from pykube_server.storage.factory import open_backend
from pykube_server.storage.store import Store

log = logging.getLogger(__name__)

NOT_FOUND_TEXT = "the server could not find the requested resource"
CLUSTER_INFO_PATH = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
"""Readable anonymously (kube allows anonymous requests everywhere and RBAC decides; this is the
one resource path a joining node must read before it has any credentials)."""


@dataclass(frozen=True)
class Settings:
    storage_url: str = "memory://"
    """Where objects live: memory://, sqlite:///path/file.db."""
    kubernetes_version: str = "1.33"
    """The emulated Kubernetes release (major.minor) reported by /version."""
    server_address: str = "127.0.0.1:6443"
    """Advertised in legacy discovery's serverAddressByClientCIDRs."""
    token_auth_file: str = ""
    encryption_provider_config: str = ""
    """kube-apiserver's --encryption-provider-config: an EncryptionConfiguration file."""
    enable_bootstrap_token_auth: bool = False
    """kube-apiserver's --enable-bootstrap-token-auth (`up` turns it on, as kubeadm does)."""
    audit_policy_file: str = ""
    """kube-apiserver's --audit-policy-file (audit is on when this and audit_log_path are set)."""
    audit_log_path: str = ""
    audit_log_maxsize: int = 0
    """Megabytes before the audit log is rotated (0: never)."""
    audit_log_maxbackup: int = 0
    audit_log_maxage: int = 0
    max_requests_inflight: int = 400
    """kube-apiserver's --max-requests-inflight (0: no limit)."""
    max_mutating_requests_inflight: int = 200
    request_timeout_seconds: float = 60.0
    """kube-apiserver's --request-timeout, for everything but watches and streams."""
    """kube-apiserver's --token-auth-file CSV (token,user,uid,"groups")."""
    compaction_retention_seconds: float = 300.0
    """How long watch history is kept (older resourceVersions get 410 Expired)."""
    compaction_interval_seconds: float = 60.0
    service_cluster_ip_range: str = "127.96.0.0/16"
    """kube-apiserver's --service-cluster-ip-range: where ClusterIPs are allocated from."""
    service_node_port_range: str = "30000-32767"
    """kube-apiserver's --service-node-port-range."""
    allocation_repair_interval_seconds: float = REPAIR_INTERVAL_SECONDS
    """How often the ClusterIP/NodePort repair pass runs (kube-apiserver: every 3 minutes)."""
    kubernetes_service_ip: str = "127.96.0.1"
    """The ClusterIP of the `kubernetes` Service (first address of the service range)."""
    secure_port: int = 6443
    authenticate: bool = True
    """False only for in-process tests that talk plain HTTP."""
    authorization_mode: str = "AlwaysAllow"
    """kube-apiserver's --authorization-mode (comma list of AlwaysAllow, AlwaysDeny, Node, RBAC);
    the command line's default is Node,RBAC, in-process tests without authentication allow all."""
    enable_admission_plugins: tuple[str, ...] = ()
    """kube-apiserver's --enable-admission-plugins: added to the default-on set."""
    disable_admission_plugins: tuple[str, ...] = ()
    """kube-apiserver's --disable-admission-plugins."""
    service_account_issuers: tuple[str, ...] = ()
    """--service-account-issuer (repeatable): the first issues tokens, all are accepted."""
    service_account_key_files: tuple[str, ...] = ()
    """--service-account-key-file: PEM files of keys that verify service account tokens."""
    service_account_signing_key_file: str = ""
    """--service-account-signing-key-file; without it (and key files) an in-memory key is made."""
    api_audiences: tuple[str, ...] = ()
    """--api-audiences (default: the issuers)."""
    service_account_max_token_expiration_seconds: int = 0
    """--service-account-max-token-expiration (0: no maximum)."""
    service_account_extend_token_expiration: bool = True
    """--service-account-extend-token-expiration: projected tokens live a year, warning after 3607 s."""
    service_account_jwks_uri: str = ""
    """--service-account-jwks-uri: overrides jwks_uri in the OIDC discovery document."""
    endpoint_reconciler_ttl_seconds: float = 15.0
    """A master lease not renewed this long drops its server from the `kubernetes` endpoints."""
    endpoint_reconciler_interval_seconds: float = 10.0
    """How often each server renews its leases and reconciles the `kubernetes` endpoints."""
    pki_dir: str = ""
    """The cluster PKI directory: the front-proxy pair for API aggregation is kept there (none:
    a throwaway pair)."""
    extra: dict[str, Any] = field(default_factory=dict)


def version_info(release: str) -> dict[str, str]:
    major, minor = release.split(".")[:2]
    return {
        "major": major, "minor": minor,
        "emulationMajor": major, "emulationMinor": minor,
        "minCompatibilityMajor": major, "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
        "gitVersion": f"v{major}.{minor}.0+pykube", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
        "compiler": "gc", "platform": "linux/amd64",
    }


class APIServer:
    """Owns the storage, the watch cache and one ResourceStore per served resource."""

    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self.specs: dict[tuple[str, str, str], ResourceSpec] = {}
        self.stores: dict[tuple[str, str, str], ResourceStore] = {}
        strategies = {}
        roots: dict[str, Any] = {}
        for spec in RESOURCES:
            self.specs[(spec.group, spec.version, spec.plural)] = spec
            if spec.persisted:
                root = self.root_of(spec)
                strategy = strategy_for(spec)
                strategies[spec] = strategy
                if conversion_for(spec) is None:  # a shared root is indexed as its stored kind
                    roots.setdefault(root, strategy)
        self.root_strategies: dict[str, Any] = roots
        """Key root -> the strategy giving its selectable fields (custom resources' roots are added)."""
        self.cacher = Cacher(backend, roots=roots,
                             field_indexer=lambda root, obj: self.root_strategies[root].selectable_fields(obj))
        self.service_allocator = ServiceAllocator(IPRange(settings.service_cluster_ip_range),
                                                  PortRange(settings.service_node_port_range))
        services_spec = self.specs[("", "v1", "services")]
        services_strategy = strategies[services_spec]
        if isinstance(services_strategy, ServiceStrategy):
            services_strategy.allocator = self.service_allocator
        store = Store(backend, self.cacher)
        namespaces_root = self.root_of(self.specs[("", "v1", "namespaces")])
        self.service_claims = ServiceClaims(backend, self.service_allocator,
                                            self.root_of(self.specs[("networking.k8s.io", "v1", "ipaddresses")]))
        """ClusterIPs (IPAddress objects) and NodePorts (the stored bitmap) claimed in storage."""
        service_store = AllocatingStore(backend, self.cacher, self.service_claims, self.root_of(services_spec))
        for spec, strategy in strategies.items():
            conversion = conversion_for(spec)
            if conversion is not None:  # served over another resource's storage, converted both ways
                self.stores[(spec.group, spec.version, spec.plural)] = ConvertedResourceStore(
                    spec, strategy, store, self.cacher, namespaces_root, root=self.root_of(spec),
                    conversion=conversion)
                continue
            self.stores[(spec.group, spec.version, spec.plural)] = ResourceStore(
                spec, strategy, service_store if spec is services_spec else store, self.cacher, namespaces_root,
                root=self.root_of(spec))
        self.allocation_repair = AllocationRepair(
            self.service_claims, self.cacher, self.root_of(services_spec), self.service_claims.ip_root,
            interval=settings.allocation_repair_interval_seconds)
        self.discovery = Discovery((*RESOURCES, *metrics.SPECS), preferred_versions() | metrics.PREFERRED,
                                   settings.server_address)
        self.metrics = metrics.MetricsAPI(self)
        """metrics.k8s.io, served here as metrics-server would through its APIService."""
        # kube writes /version with WriteRawJSON: indented by two spaces, no trailing newline
        self.version = json.dumps(version_info(settings.kubernetes_version), indent=2).encode()
        self.openapi = OpenAPI(RESOURCES, settings.kubernetes_version)
        self.crds = CRDServing(self)
        """Serves CustomResourceDefinitions: their resources, discovery, OpenAPI and conditions."""
        self.aggregator = Aggregator(self)
        """APIServices: local ones registered, remote group-versions proxied and merged into discovery."""
        authorization = authz_modes.build(self, settings.authorization_mode)
        self.authorizer: authz.Authorizer = authorization.authorizer
        self.authorization = authorization
        self.rbac = authorization.rbac
        """The RBAC authorizer when RBAC is a mode: rules reviews and escalation checks ask it."""
        self.escalation = EscalationCheck(self, self.rbac)
        self.token_sources: list[authn.TokenSource] = []
        self.service_accounts = ServiceAccounts(settings)
        """Service account token keys, issuing and verification, and OIDC issuer discovery."""
        self.service_accounts.attach(self)
        self.admission: Chain = build_chain(self, settings.enable_admission_plugins, settings.disable_admission_plugins)
        """The admission plugins every write passes through (`--enable-admission-plugins`)."""

    @staticmethod
    def root_of(spec: ResourceSpec) -> str:
        # Kinds that share storage with another group need conversion between their schemas:
        # those with one (registry/sharedstorage.py) share the keys, the others keep their own.
        if spec.storage_resource and spec.storage_group != spec.group and conversion_for(spec) is None:
            return f"/registry/{spec.group}/{spec.plural}"
        return spec.key_root

    def store_for(self, group: str, version: str, plural: str) -> ResourceStore:
        return self.stores[(group, version, plural)]

    async def run(self) -> None:
        """Follow storage (watch cache) and compact history until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.cacher.run())
            tg.create_task(run_compactor(self.backend, retention_seconds=self.settings.compaction_retention_seconds,
                                         interval_seconds=self.settings.compaction_interval_seconds))
            await self.cacher.wait_ready()
            self.service_allocator.follow(self.cacher, self.root_of(self.specs[("", "v1", "services")]))
            await self.allocation_repair.run_once()  # the stored bitmap and IPAddresses, before any Service write
            tg.create_task(self.allocation_repair.run(), name="allocation-repair")
            await bootstrap(self)
            await rbac_bootstrap.reconcile(self)
            endpoint_reconciler = await bootstrap_kubernetes_service(self)
            tg.create_task(endpoint_reconciler.run(), name="endpoint-reconciler")
            await self.crds.sync()
            tg.create_task(self.crds.run())
            await self.aggregator.start()
            tg.create_task(self.aggregator.run(), name="aggregator")
            self.bootstrapped.set()

    bootstrapped: asyncio.Event

    # -- dispatch -----------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        info = parse_request_info(request.method, request.path, dict(request.query))
        if impersonation.requested(request.headers):
            request[authn.USER] = await impersonation.impersonate(
                self.authorizer, request.get(authn.USER) or authn.ANONYMOUS, request.headers)
        await self.authorize(request, info)  # before routing, as kube's filter chain does
        apiservice = self.aggregator.remote_for(request.path)
        if apiservice is not None:  # a group-version an extension API server serves
            return await self.aggregator.handle(request, apiservice)
        if not info.resource_request:
            return await self.non_resource(request, info)
        if info.group == metrics.GROUP:
            return await self.metrics.handle(request, info)
        spec = self.specs.get((info.group, info.version, info.resource))
        if spec is None:
            raise errors.NotFound(NOT_FOUND_TEXT, details={})
        if info.subresource and spec.subresource(info.subresource) is None:
            raise errors.NotFound(NOT_FOUND_TEXT, details={})
        if info.subresource == "binding" or (spec.group, spec.plural) == ("", "bindings"):
            return await self.bind(request, info, spec)
        if info.subresource == "eviction" and (spec.group, spec.plural) == ("", "pods"):
            return await eviction.evict(self, request, info)
        if not spec.persisted:
            return await reviews.handle(self, request, info, spec)
        verbs = spec.subresource(info.subresource).verbs if info.subresource else spec.verbs  # type: ignore[union-attr]
        if info.verb not in verbs and not (info.verb == "watch" and "watch" in spec.verbs):
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource",
                details={"group": spec.group, "kind": spec.plural} if spec.group else {"kind": spec.plural})
        call = make_call(request, info, spec, self.stores[(spec.group, spec.version, spec.plural)], self.admission)
        if spec.group == rbac_bootstrap.GROUP and info.verb in ("create", "update", "patch") and not info.subresource:
            await self.escalation.check_request(call, request.get(authn.USER) or authn.ANONYMOUS)
        custom = self.crds.handler_for(spec, info)  # custom resources, and DELETE of a CRD
        if custom is not None:
            return await custom(call)
        special = SUBRESOURCE_HANDLERS.get((spec.group, spec.plural, info.subresource))
        if special is not None:
            return await special(self, call)
        handler = HANDLERS.get((info.verb, info.subresource if info.subresource in ("scale",) else ""))
        if handler is None or (info.subresource and info.subresource not in ("status", "scale", "finalize", "approval", "ephemeralcontainers")):
            raise errors.NotFound(NOT_FOUND_TEXT, details={})
        return await handler(call)

    async def bind(self, request: web.Request, info: RequestInfo, spec: ResourceSpec) -> web.StreamResponse:
        """POST pods/<name>/binding, or the legacy POST bindings: the scheduler's one write."""
        if info.verb != "create":
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource",
                                          details={"kind": spec.plural})
        body = decode_body(await request.read(), content_type_of(request.headers.get("Content-Type")))
        if not isinstance(body, dict) or body.get("kind", "Binding") != "Binding":
            raise errors.BadRequest("the object provided is unrecognized (must be of type Binding)")
        meta = body.setdefault("metadata", {})
        if info.subresource and meta.get("name") != info.name:
            raise errors.BadRequest("name in URL does not match name in Binding object")
        await self.store_for("", "v1", "pods").bind(info.namespace, body, dry_run="dryRun" in request.query)
        return raw_response(orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                          "status": "Success", "code": 201}), status=201)

    async def authorize(self, request: web.Request, info: RequestInfo) -> None:
        user = request.get(authn.USER) or authn.ANONYMOUS
        attributes = authz.RequestAttributes(
            user=user, verb=info.verb, namespace=info.namespace, api_group=info.group, api_version=info.version,
            resource=info.resource, subresource=info.subresource, name=info.name, path=info.path,
            resource_request=info.resource_request)
        decision, reason = await self.authorizer.authorize(attributes)
        if decision != authz.Decision.ALLOW:
            error = authz.forbidden(attributes, reason)
            log.debug("%s", error)
            raise error

    async def non_resource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        accept = request.headers.get("Accept", "")
        discovery = self.aggregator.discovery
        if path.startswith("/openapi/v3"):
            merged = await self.aggregator.openapi(request, path, self.openapi.index)
            if merged is not None:
                return merged
        if path.startswith("/openapi/"):
            return serve_openapi(self.openapi, request, path)
        if path in ("/api", "/apis"):
            version = wants_aggregated(accept)
            if version:
                docs = discovery.aggregated_core if path == "/api" else discovery.aggregated_apis
                resp = raw_response(docs[version])
                resp.headers["Content-Type"] = AGGREGATED_V2 if version == "v2" else AGGREGATED_V2BETA1
                resp.headers["Vary"] = "Accept"
                return resp
            return raw_response(discovery.api_versions if path == "/api" else discovery.group_list)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            body = discovery.resource_lists.get(parts[1])
            if body is not None:
                return raw_response(body)
        if parts[0] == "apis" and len(parts) == 2 and parts[1] in discovery.groups:
            return raw_response(discovery.groups[parts[1]])
        if parts[0] == "apis" and len(parts) == 3:
            body = discovery.resource_lists.get(f"{parts[1]}/{parts[2]}")
            if body is not None:
                return raw_response(body)
        if path == "/version":
            return web.Response(body=self.version, content_type="application/json")
        oidc_answer = self.service_accounts.discovery.serve(path)
        if oidc_answer is not None:
            return oidc_answer
        if parts[0] in ("healthz", "livez", "readyz"):
            return self.health(request, parts)
        if parts[0] in ("api", "apis"):
            raise errors.NotFound(NOT_FOUND_TEXT, details={})
        return web.Response(status=404, text="404 page not found\n")

    def health(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        checks = ["ping", "log", "etcd", "poststarthook/start-apiextensions-informers", "poststarthook/bootstrap-controller"]
        ready = self.cacher.ready and self.bootstrapped.is_set()
        if parts[0] == "readyz":
            checks.append("informer-sync")
        ok = ready or parts[0] == "livez"
        if len(parts) > 1:
            name = "/".join(parts[1:])
            if name not in checks:
                return web.Response(status=404, text="404 page not found\n")
            return web.Response(status=200 if ok or name == "ping" else 500, text="ok" if ok or name == "ping" else "not ready")
        if "verbose" in request.query:
            lines = [f"[+]{c} ok" if ok else f"[-]{c} failed: reason withheld" for c in checks]
            lines.append(f"{parts[0]} check passed" if ok else f"{parts[0]} check failed")
            return web.Response(status=200 if ok else 500, text="\n".join(lines) + "\n")
        return web.Response(status=200 if ok else 500, text="ok" if ok else f"{parts[0]} check failed")


SUBRESOURCE_HANDLERS: dict[tuple[str, str, str], Callable[[APIServer, Call], Awaitable[web.StreamResponse]]] = {
    ("", "serviceaccounts", "token"): tokenrequest.create,
    ("", "pods", "log"): proxy.pod_log,  # streamed from the pod's kubelet
    ("", "pods", "portforward"): portforward.pod_portforward,  # relayed to the pod's kubelet
    ("", "pods", "exec"): lambda server, call: streamproxy.pod_stream(server, call, "exec"),
    ("", "pods", "attach"): lambda server, call: streamproxy.pod_stream(server, call, "attach"),
}
"""Subresources with handlers of their own (`(group, resource, subresource)`)."""

HANDLERS: dict[tuple[str, str], Callable[[Call], Awaitable[web.StreamResponse]]] = {
    ("get", ""): read.get,
    ("list", ""): read.list_,
    ("watch", ""): watch.watch,
    ("create", ""): write.create,
    ("update", ""): write.update,
    ("patch", ""): write.patch,
    ("delete", ""): write.delete,
    ("deletecollection", ""): write.delete_collection,
    ("get", "scale"): write.get_scale,
    ("update", "scale"): write.update,
    ("patch", "scale"): write.patch,
}


SYSTEM_PRIORITY_CLASSES = (
    ("system-node-critical", 2000001000, "Used for system critical pods that must not be moved from their current node."),
    ("system-cluster-critical", 2000000000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
)


async def bootstrap(server: APIServer) -> None:
    """First-start objects: the four namespaces, the system PriorityClasses, the
    `kubernetes` Service and (on the very first start) the default StorageClass."""
    classes = server.store_for("scheduling.k8s.io", "v1", "priorityclasses")
    for name, value, description in SYSTEM_PRIORITY_CLASSES:
        try:
            await classes.create("", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                      "metadata": {"name": name}, "value": value, "description": description})
        except errors.AlreadyExists:
            pass
    from pykube_server.apiserver.flowcontrolbootstrap import bootstrap_flowcontrol
    await bootstrap_flowcontrol(server)
    namespaces = server.store_for("", "v1", "namespaces")
    first_start = False
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        try:
            await namespaces.create("", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            first_start = first_start or name == "default"
        except errors.AlreadyExists:
            pass
    if first_start:  # the default StorageClass, once: a user may delete or replace it
        from pykube_server.apiserver.storagebootstrap import bootstrap_storage
        await bootstrap_storage(server)
    services = server.store_for("", "v1", "services")
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": server.settings.kubernetes_service_ip,
                 "clusterIPs": [server.settings.kubernetes_service_ip],
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": server.settings.secure_port}],
                 "sessionAffinity": "None"},
    }
    try:
        await services.create("default", service)
    except errors.AlreadyExists:
        pass


@web.middleware
async def status_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """The one place an error becomes a `Status` body."""
    try:
        return await handler(request)
    except errors.StatusError as exc:
        body = orjson.dumps(exc.status()) + b"\n"  # a Status ends with a newline, as kube encodes it
        resp = web.Response(status=exc.code, body=body, content_type="application/json")
        retry = (exc.details or {}).get("retryAfterSeconds")
        if retry:
            resp.headers["Retry-After"] = str(retry)
        return resp
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        log.exception("internal error serving %s %s", request.method, request.path)
        err = errors.InternalError(f"Internal error occurred: {exc}", details={"causes": [{"message": str(exc)}]})
        return web.Response(status=500, body=orjson.dumps(err.status()) + b"\n", content_type="application/json")


async def make_app(settings: Settings, *, backend: Backend | None = None) -> web.Application:
    """An aiohttp app serving the API; storage opens and closes with the app."""
    middlewares: list[Any] = [status_middleware]
    app_ref: list[web.Application] = []  # the middleware is built before the app and its server
    tokens = [authn.TokenAuthenticator.load(settings.token_auth_file)] if settings.token_auth_file else []
    if settings.authenticate:
        middlewares.insert(0, authn.authentication_middleware(
            authn.Authenticator(tokens=[*tokens, _ServiceAccountTokens(app_ref),
                                        *([_BootstrapTokens(app_ref)] if settings.enable_bootstrap_token_auth else [])]),
            public_paths=(*authn.DEFAULT_PUBLIC_PATHS, CLUSTER_INFO_PATH)))
    auditor = audit.from_settings(settings.audit_policy_file, settings.audit_log_path,
                                  max_size_mb=settings.audit_log_maxsize, max_backups=settings.audit_log_maxbackup,
                                  max_age_days=settings.audit_log_maxage)
    if auditor is not None:  # after authentication (it records the user), around error rendering
        middlewares.insert(len(middlewares) - 1, auditor.middleware())
    middlewares.append(limits.Limits(max_inflight=settings.max_requests_inflight,
                                     max_mutating_inflight=settings.max_mutating_requests_inflight,
                                     request_timeout=settings.request_timeout_seconds).middleware())
    app = web.Application(middlewares=middlewares, client_max_size=limits.MAX_REQUEST_BODY_BYTES)
    if auditor is not None:
        app.on_response_prepare.append(auditor.on_prepare)
        app.on_cleanup.append(lambda _app: _close(auditor))
    app_ref.append(app)
    app[SERVER] = None  # type: ignore[assignment]

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        store_backend = backend if backend is not None else await open_backend(settings.storage_url)
        if settings.encryption_provider_config:
            store_backend = TransformingBackend(store_backend, encryption.load(settings.encryption_provider_config, RESOURCES))
        server = APIServer(settings, store_backend)
        server.bootstrapped = asyncio.Event()
        server.token_sources = [*tokens, server.service_accounts.authenticator]
        app[SERVER] = server
        task = asyncio.create_task(server.run(), name="apiserver-run")
        ready = asyncio.create_task(server.bootstrapped.wait())
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            task.result()
        yield
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        if backend is None:
            await store_backend.aclose()

    app.cleanup_ctx.append(lifecycle)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await app[SERVER].dispatch(request)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _close(auditor: audit.Auditor) -> None:
    auditor.backend.close()


SERVER: web.AppKey[APIServer] = web.AppKey("server", APIServer)


class _BootstrapTokens:
    """The authentication chain's bootstrap token source (`--enable-bootstrap-token-auth`)."""

    def __init__(self, app_ref: list[web.Application]) -> None:
        self._app_ref = app_ref
        self._authenticator: BootstrapTokenAuthenticator | None = None

    async def authenticate_token(self, token: str) -> authn.UserInfo | None:
        server = self._app_ref[0].get(SERVER) if self._app_ref else None
        if server is None:
            return None
        if self._authenticator is None:
            self._authenticator = BootstrapTokenAuthenticator(server)
        return await self._authenticator.authenticate_token(token)


class _ServiceAccountTokens:
    """The authentication chain's service account token source: the app's server's, once it runs."""

    def __init__(self, app_ref: list[web.Application]) -> None:
        self._app_ref = app_ref

    async def authenticate_token(self, token: str) -> authn.UserInfo | None:
        server = self._app_ref[0].get(SERVER) if self._app_ref else None
        if server is None:
            return None
        return await server.service_accounts.authenticator.authenticate_token(token)
