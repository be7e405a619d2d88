"""API aggregation: APIServices routing group-versions to extension API servers (kube-aggregator).

kube-apiserver runs the aggregator in front of everything: each APIService names a
group-version and either serves it locally (`spec.service` unset: every built-in group-version,
every CRD's) or proxies it to a Service. Modules, one job each: `priorities` (the built-in
priority table and local APIService objects), `backend` (Service to endpoint, TLS, the
front-proxy identity headers), `proxy` (forwarding one request), `available` (the Available
condition, kube's reasons and messages), `authconfig` (the `extension-apiserver-authentication`
ConfigMap), `controller` (the loop that keeps APIServices, their status, the proxy's routing
table and the merged discovery documents up to date).
"""

from pykube_server.apiserver.aggregation.controller import Aggregator

__all__ = ["Aggregator"]
