"""Service account issuer discovery: `/.well-known/openid-configuration` and `/openid/v1/jwks`.

kube-apiserver publishes an OIDC provider document for its service account issuer so that
outside parties (cloud workload identity, Vault) can verify projected tokens. The document is
served only when the issuer is an `https` URL; `jwks_uri` is `--service-account-jwks-uri`, or
the issuer's scheme and host with path `/openid/v1/jwks`. Both answers are built once.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import orjson
from aiohttp import web

from pykube_server.api import jwt

CONFIGURATION_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
JWKS_CONTENT_TYPE = "application/jwk-set+json"
CACHE_CONTROL = "public, max-age=3600"


class Discovery:
    def __init__(self, issuer: str, keys: list[jwt.PublicKey], jwks_uri: str = "") -> None:
        parts = urlsplit(issuer)
        self.enabled = parts.scheme == "https" and bool(parts.netloc)
        uri = jwks_uri or urlunsplit((parts.scheme, parts.netloc, JWKS_PATH, "", ""))
        algorithms = sorted({jwt.algorithm_for(k) for k in keys})
        self.configuration = orjson.dumps({
            "issuer": issuer, "jwks_uri": uri, "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": algorithms,
        })
        self.jwks = orjson.dumps({"keys": [jwt.public_jwk(k) for k in keys]})

    def serve(self, path: str) -> web.Response | None:
        """The answer for `path`, or None when it is not a discovery path (or discovery is off)."""
        if not self.enabled or path not in (CONFIGURATION_PATH, JWKS_PATH):
            return None
        if path == CONFIGURATION_PATH:
            resp = web.Response(body=self.configuration, content_type="application/json")
        else:
            resp = web.Response(body=self.jwks, content_type=JWKS_CONTENT_TYPE)
        resp.headers["Cache-Control"] = CACHE_CONTROL
        return resp
