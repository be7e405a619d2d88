"""Service account tokens as kube-apiserver 1.33 issues and checks them.

Facts recorded here (kubernetes pkg/serviceaccount/claims.go and jwt.go, pkg/registry/core/
serviceaccount/storage/token.go, pkg/apis/authentication/validation, plugin/pkg/admission/
serviceaccount):

* a token is a JWS whose header is exactly `{"alg":"RS256","kid":<base64url SHA-256 of the PKIX
  DER public key>}` and whose claims are aud (a list), exp, iat, iss, jti, `kubernetes.io`
  {namespace, serviceaccount{name, uid}, pod/secret/node{name, uid}, warnafter}, nbf, sub;
* TokenRequest defaults expirationSeconds to 3600 and audiences to the API audiences, refuses
  less than 10 minutes (`TokenRequest.authentication.k8s.io "" is invalid: ...`), 404s a
  missing account, binds to an existing Pod/Secret/Node whose uid must match (409), shortens a
  request above --service-account-max-token-expiration with a warning, and stretches a
  projected volume's 3607 s pod-bound token to a year with `warnafter`;
* the authenticator checks signature, issuer, audiences, times (60 s leeway) and that the
  account and bound objects still exist with the same uids; a bound pod's deletion
  invalidates the token ("service account token has been invalidated");
* TokenReview reports the audiences the token was accepted for, omits `authenticated` when
  false, and words a refusal `[invalid bearer token, <reason>]` (e.g. "service account token
  has been invalidated" once the bound pod is gone, as seen on real clusters);
* the issuer's OIDC discovery documents are served at /.well-known/openid-configuration and
  /openid/v1/jwks;
* the ServiceAccount admission plugin defaults serviceAccountName, mounts the
  `kube-api-access-xxxxx` projected volume, honours automountServiceAccountToken and refuses
  pods whose account is missing with a 403.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pykube_server.api import jwt
from pykube_server.apiserver.admission.serviceaccount import MOUNT_PATH, mount_token, token_volume
from pykube_server.apiserver.serviceaccount import tokens
from pykube_server.apiserver.serviceaccount.keys import load_public_keys
from pykube_server.cmd.apiserver import parse_go_duration
from pykube_server.controllers.serviceaccounttoken import legacy_claims
from tests.apiserver.test_rest_support import Raw, Response, unique
from tests.conftest import ServerProcess, start_server

ISSUER = "https://kubernetes.default.svc.cluster.local"


# --- the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The API server alone, with the ServiceAccount plugin on (its default) and AlwaysAllow,
    so a token's user can read what it asks for."""
    proc = start_server(tmp_path_factory.mktemp("sa-tokens"), "--components=", "--authorization-mode=AlwaysAllow",
                        "--service-account-max-token-expiration=48h")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def raw(server: ServerProcess) -> Raw:
    return Raw(server.kubeconfig)


@pytest.fixture
def ns(raw: Raw) -> str:
    name = unique("sa")
    assert raw.post("/api/v1/namespaces", {"metadata": {"name": name}}).status == 201
    return name


def create_sa(raw: Raw, ns: str, name: str = "default", **fields: Any) -> dict[str, Any]:
    resp = raw.post(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": name}, **fields})
    assert resp.status == 201, resp
    return resp.json()


def token_request(raw: Raw, ns: str, sa: str, spec: dict[str, Any] | None = None, **body: Any) -> Response:
    return raw.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec or {}, **body})


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, claims, _, _ = jwt.split(token)
    return header, claims


def bearer(server: ServerProcess, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """A request carrying only the bearer token (no client certificate)."""
    ca = server.data_dir / "pki" / "ca.crt"
    ctx = ssl.create_default_context(cafile=str(ca))
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def review(raw: Raw, token: str, audiences: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    resp = raw.post("/apis/authentication.k8s.io/v1/tokenreviews",
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
    assert resp.status == 201, resp
    return resp.json()["status"]


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


# --- JWT, without a server ----------------------------------------------------------------------


@pytest.mark.parametrize("make_key", [lambda: rsa.generate_private_key(65537, 2048),
                                      lambda: ec.generate_private_key(ec.SECP256R1())], ids=["RS256", "ES256"])
def test_jwt_round_trip_and_tampering(make_key: Any) -> None:
    key = make_key()
    token = jwt.encode({"sub": "x", "aud": ["a"]}, key)
    header, claims = decode(token)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert header == {"alg": jwt.algorithm_for(key), "kid": kid}
    assert list(header) == ["alg", "kid"]
    assert jwt.verify(token, [key.public_key()]) == claims == {"aud": ["a"], "sub": "x"}
    h, p, s = token.split(".")
    forged = jwt.b64encode(json.dumps({"sub": "admin", "aud": ["a"]}).encode())
    for bad in (f"{h}.{forged}.{s}", f"{h}.{p}.{s[:-4]}AAAA", f"{h}.{p}", "not-a-jwt"):
        with pytest.raises(jwt.TokenError):
            jwt.verify(bad, [key.public_key()])
    other = make_key()
    with pytest.raises(jwt.TokenError):
        jwt.verify(token, [other.public_key()])
    none_alg = jwt.b64encode(b'{"alg":"none"}') + "." + p + "."
    with pytest.raises(jwt.TokenError):
        jwt.verify(none_alg, [key.public_key()])


def test_claims_are_sorted_like_go_maps() -> None:
    key = rsa.generate_private_key(65537, 2048)
    account = {"metadata": {"name": "sa", "namespace": "ns", "uid": "u1"}}
    the_pod = {"metadata": {"name": "p", "uid": "u2"}}
    node = {"metadata": {"name": "n", "uid": "u3"}}
    claims = tokens.claims(account, audiences=["a"], expiration_seconds=600, issuer=ISSUER, pod=the_pod, node=node,
                           warn_after=300, now=1000)
    payload = jwt.b64decode(jwt.encode(claims, key).split(".")[1])
    assert list(json.loads(payload)) == ["aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"]
    assert json.loads(payload)["kubernetes.io"] == {
        "namespace": "ns", "node": {"name": "n", "uid": "u3"}, "pod": {"name": "p", "uid": "u2"},
        "serviceaccount": {"name": "sa", "uid": "u1"}, "warnafter": 1300}
    assert payload.index(b'"node"') < payload.index(b'"pod"') < payload.index(b'"serviceaccount"')
    assert (claims["iat"], claims["nbf"], claims["exp"], claims["sub"]) == (1000, 1000, 1600, "system:serviceaccount:ns:sa")
    with pytest.raises(ValueError):
        tokens.claims(account, audiences=[], expiration_seconds=600, issuer=ISSUER, pod=the_pod, secret=the_pod)


class Objects:
    """A fake object getter for the authenticator."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(self, kind: str, namespace: str, name: str, uid: str, **extra: Any) -> dict[str, Any]:
        obj = {"metadata": {"name": name, "namespace": namespace, "uid": uid}, **extra}
        self.objects[(kind, namespace, name)] = obj
        return obj

    async def __call__(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))


@pytest.fixture
def signer() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def authenticator(key: rsa.RSAPrivateKey, objects: Objects, now: float | None = None) -> tokens.ServiceAccountTokenAuthenticator:
    return tokens.ServiceAccountTokenAuthenticator(keys=[key.public_key()], issuers=[ISSUER], api_audiences=[ISSUER],
                                                   lookup=objects, clock=(lambda: now) if now else time.time)


async def test_authenticator_checks_times_uids_and_bound_objects(signer: rsa.RSAPrivateKey) -> None:
    objects = Objects()
    account = objects.add("ServiceAccount", "ns", "sa", "u-sa")
    the_pod = objects.add("Pod", "ns", "p", "u-pod")
    node = objects.add("Node", "", "n1", "u-node")
    issued = time.time()
    token = jwt.encode(tokens.claims(account, audiences=[ISSUER], expiration_seconds=600, issuer=ISSUER,
                                     pod=the_pod, node=node, now=issued), signer)
    verified = await authenticator(signer, objects).verify(token)
    assert verified is not None
    user = verified.user
    assert user.username == "system:serviceaccount:ns:sa" and user.uid == "u-sa"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns")
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("p",)
    assert user.extra["authentication.kubernetes.io/pod-uid"] == ("u-pod",)
    assert user.extra["authentication.kubernetes.io/node-name"] == ("n1",)
    assert user.extra["authentication.kubernetes.io/node-uid"] == ("u-node",)
    assert user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    assert verified.audiences == [ISSUER]

    async def refusal(auth: tokens.ServiceAccountTokenAuthenticator, tok: str = token, auds: list[str] | None = None) -> str:
        with pytest.raises(tokens.TokenInvalid) as info:
            await auth.verify(tok, auds)
        return str(info.value)

    # within the 60 s leeway an expired token still works; past it, it does not
    assert await authenticator(signer, objects, issued + 650).verify(token) is not None
    assert await refusal(authenticator(signer, objects, issued + 661)) == "service account token has expired"
    assert await refusal(authenticator(signer, objects, issued - 61)) == "service account token is not valid yet"
    assert await refusal(authenticator(signer, objects), auds=["other"]) == (
        f'token audiences ["{ISSUER}"] is invalid for the target audiences ["other"]')
    objects.add("Pod", "ns", "p", "u-pod-2")
    assert await refusal(authenticator(signer, objects)) == (
        "pod UID (u-pod-2) does not match service account pod ref claim (u-pod)")
    del objects.objects[("Pod", "ns", "p")]
    assert await refusal(authenticator(signer, objects)) == "service account token has been invalidated"
    objects.add("ServiceAccount", "ns", "sa", "u-sa-2")
    assert await refusal(authenticator(signer, objects)) == "service account UID (u-sa-2) does not match claim (u-sa)"
    # another issuer's token is not ours to judge; a bad signature is
    foreign = jwt.encode({**decode(token)[1], "iss": "https://elsewhere"}, signer)
    assert await authenticator(signer, objects).verify(foreign) is None
    assert await authenticator(signer, objects).verify("static-token") is None
    impostor = jwt.encode(decode(token)[1], rsa.generate_private_key(65537, 2048))
    assert await refusal(authenticator(signer, objects), impostor) == "go-jose/go-jose: error in cryptographic primitive"


async def test_legacy_secret_tokens(signer: rsa.RSAPrivateKey) -> None:
    objects = Objects()
    account = objects.add("ServiceAccount", "ns", "build", "u-sa")
    secret = {"metadata": {"name": "build-token", "namespace": "ns"}}
    token = jwt.encode(legacy_claims(account, secret), signer)
    assert decode(token)[1] == {
        "iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "ns",
        "kubernetes.io/serviceaccount/secret.name": "build-token",
        "kubernetes.io/serviceaccount/service-account.name": "build",
        "kubernetes.io/serviceaccount/service-account.uid": "u-sa", "sub": "system:serviceaccount:ns:build"}
    objects.add("Secret", "ns", "build-token", "u-s", data={"token": base64.b64encode(token.encode()).decode()})
    verified = await authenticator(signer, objects).verify(token)
    assert verified is not None and verified.user.username == "system:serviceaccount:ns:build"
    assert verified.audiences == [ISSUER]  # audience-less legacy tokens are for the API audiences
    marked: list[tuple[str, str, str]] = []

    async def mark(namespace: str, name: str, day: str) -> None:
        marked.append((namespace, name, day))

    tracking = authenticator(signer, objects)
    tracking.mark_used = mark
    await tracking.verify(token)
    assert marked == [("ns", "build-token", time.strftime("%Y-%m-%d", time.gmtime()))]
    objects.objects[("Secret", "ns", "build-token")]["metadata"]["labels"] = {
        "kubernetes.io/legacy-token-invalid-since": "2026-01-01"}
    with pytest.raises(tokens.TokenInvalid, match="has been marked invalid"):
        await authenticator(signer, objects).verify(token)
    objects.add("Secret", "ns", "build-token", "u-s", data={"token": base64.b64encode(b"other").decode()})
    with pytest.raises(tokens.TokenInvalid, match="token does not match server's copy"):
        await authenticator(signer, objects).verify(token)


def test_mount_token_skips_containers_with_their_own_mount() -> None:
    the_pod = pod("p", initContainers=[{"name": "i", "image": "x"}])
    the_pod["spec"]["containers"].append({"name": "own", "image": "x",
                                          "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]})
    mount_token(the_pod)
    volume = the_pod["spec"]["volumes"][0]
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume["name"])
    assert volume == token_volume(volume["name"])
    mount = {"name": volume["name"], "readOnly": True, "mountPath": MOUNT_PATH}
    assert the_pod["spec"]["initContainers"][0]["volumeMounts"] == [mount]
    assert the_pod["spec"]["containers"][0]["volumeMounts"] == [mount]
    assert the_pod["spec"]["containers"][1]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT_PATH}]


def test_go_durations() -> None:
    assert parse_go_duration("48h") == 172800
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5h") == 5400
    with pytest.raises(SystemExit):
        parse_go_duration("48 hours")


# --- TokenRequest -------------------------------------------------------------------------------


def test_kubectl_create_token(server: ServerProcess, raw: Raw, ns: str) -> None:
    account = create_sa(raw, ns)
    result = server.kubectl("create", "token", "default", "-n", ns, "--duration", "10m", "--audience", "x")
    token = result.stdout
    assert not token.endswith("\n") and token.count(".") == 2
    header, claims = decode(token)
    assert header["alg"] == "RS256"
    assert claims["aud"] == ["x"] and claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"]
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["kubernetes.io"] == {"namespace": ns, "serviceaccount": {"name": "default",
                                                                            "uid": account["metadata"]["uid"]}}
    assert re.fullmatch(r"[0-9a-f-]{36}", claims["jti"])
    assert raw.post(f"/api/v1/namespaces/{ns}/pods", pod("p")).status == 201
    bound = server.kubectl("create", "token", "default", "-n", ns, "--bound-object-kind", "Pod",
                           "--bound-object-name", "p").stdout
    assert decode(bound)[1]["kubernetes.io"]["pod"]["name"] == "p"
    create_sa(raw, ns, "other")
    refused = server.kubectl("create", "token", "other", "-n", ns, "--bound-object-kind", "Pod",
                             "--bound-object-name", "p", check=False)
    assert refused.stderr.strip() == ('error: failed to create token: cannot bind token for serviceaccount "other" '
                                      "to pod running with different serviceaccount name.")
    missing = server.kubectl("create", "token", "nope", "-n", ns, check=False)
    assert missing.returncode != 0
    assert missing.stderr.strip() == 'error: failed to create token: serviceaccounts "nope" not found'


def test_token_request_defaults_and_status(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "robot")
    resp = token_request(raw, ns, "robot")
    assert resp.status == 201, resp
    body = resp.json()
    assert body["kind"] == "TokenRequest" and body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["metadata"]["name"] == "robot" and body["metadata"]["namespace"] == ns
    assert body["spec"] == {"audiences": [ISSUER], "expirationSeconds": 3600, "boundObjectRef": None}
    created = time.mktime(time.strptime(body["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
    expires = time.mktime(time.strptime(body["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
    assert expires - created == 3600
    claims = decode(body["status"]["token"])[1]
    assert claims["exp"] - claims["iat"] == 3600 and claims["aud"] == [ISSUER]


def test_token_request_validation_texts(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "robot")
    short = token_request(raw, ns, "robot", {"expirationSeconds": 599})
    assert short.status == 422
    assert short.json()["message"] == ('TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
                                       "Invalid value: 599: may not specify a duration less than 10 minutes")
    huge = token_request(raw, ns, "robot", {"expirationSeconds": (1 << 32) + 1})
    assert huge.status == 422 and "may not specify a duration larger than 2^32 seconds" in huge.json()["message"]
    renamed = token_request(raw, ns, "robot", metadata={"name": "other"})
    assert renamed.status == 422
    assert renamed.json()["message"] == ('TokenRequest.authentication.k8s.io "robot" is invalid: metadata.name: '
                                         'Invalid value: "other": must match the service account name if specified')
    typed = token_request(raw, ns, "robot", {"expirationSeconds": "600"})
    assert typed.status == 400
    assert typed.json()["message"] == ("json: cannot unmarshal string into Go struct field "
                                       "TokenRequestSpec.spec.expirationSeconds of type int64")
    missing = token_request(raw, ns, "ghost")
    assert missing.status == 404 and missing.json()["message"] == 'serviceaccounts "ghost" not found'
    assert raw.get(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token").status == 405


def test_max_expiration_shortens_with_a_warning(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "robot")
    resp = token_request(raw, ns, "robot", {"expirationSeconds": 200000})
    assert resp.status == 201
    assert resp.json()["spec"]["expirationSeconds"] == 172800
    assert resp.warnings == ['299 - "requested expiration of 200000 seconds shortened to 172800 seconds"']
    claims = decode(resp.json()["status"]["token"])[1]
    assert claims["exp"] - claims["iat"] == 172800


def test_pod_bound_token_and_its_invalidation(server: ServerProcess, raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "default")
    created = raw.post(f"/api/v1/namespaces/{ns}/pods", pod("p"))
    assert created.status == 201, created
    uid = created.json()["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid}
    resp = token_request(raw, ns, "default", {"boundObjectRef": ref})
    assert resp.status == 201, resp
    token = resp.json()["status"]["token"]
    assert decode(token)[1]["kubernetes.io"]["pod"] == {"name": "p", "uid": uid}
    status = review(raw, token)
    assert status["authenticated"] is True
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == [uid]
    # the projected volume's request: 3607 s for the API audience, stretched to a year with warnafter
    projected = token_request(raw, ns, "default", {"boundObjectRef": ref, "expirationSeconds": 3607})
    claims = decode(projected.json()["status"]["token"])[1]
    assert claims["exp"] - claims["iat"] == 365 * 24 * 3600
    assert claims["kubernetes.io"]["warnafter"] == claims["iat"] + 3607
    body = projected.json()
    assert time.mktime(time.strptime(body["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(
        time.strptime(body["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")) == 3607
    # wrong uid, wrong kind, another account's pod, a missing pod
    conflict = token_request(raw, ns, "default", {"boundObjectRef": {**ref, "uid": "nope"}})
    assert conflict.status == 409
    assert conflict.json()["message"] == (
        'Operation cannot be fulfilled on Pod "p": the UID in the bound object reference (nope) does not match the '
        "UID in record. The object might have been deleted and then recreated")
    unknown = token_request(raw, ns, "default", {"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                                    "name": "d"}})
    assert unknown.status == 400
    assert unknown.json()["message"] == "cannot bind token to object of type apps/v1, Kind=Deployment"
    create_sa(raw, ns, "other")
    wrong = token_request(raw, ns, "other", {"boundObjectRef": ref})
    assert wrong.status == 400
    assert wrong.json()["message"] == ('cannot bind token for serviceaccount "other" to pod running with different '
                                       "serviceaccount name.")
    gone = token_request(raw, ns, "default", {"boundObjectRef": {**ref, "name": "ghost"}})
    assert gone.status == 404 and gone.json()["message"] == 'pods "ghost" not found'
    # deleting the pod (immediately) invalidates its token
    assert raw.delete(f"/api/v1/namespaces/{ns}/pods/p", {"gracePeriodSeconds": 0}).status == 200
    assert review(raw, token) == {"user": {}, "error": "[invalid bearer token, service account token has been invalidated]"}
    assert bearer(server, "GET", f"/api/v1/namespaces/{ns}/pods", token)[0] == 401


def test_secret_and_node_bound_tokens(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "robot")
    secret = raw.post(f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "s"}}).json()
    token = token_request(raw, ns, "robot", {"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "s"}})
    assert token.status == 201, token
    assert decode(token.json()["status"]["token"])[1]["kubernetes.io"]["secret"] == {
        "name": "s", "uid": secret["metadata"]["uid"]}
    assert review(raw, token.json()["status"]["token"])["authenticated"] is True
    raw.delete(f"/api/v1/namespaces/{ns}/secrets/s")
    assert review(raw, token.json()["status"]["token"])["error"] == (
        "[invalid bearer token, service account token has been invalidated]")
    node_name = unique("node")
    node = raw.post("/api/v1/nodes", {"metadata": {"name": node_name}}).json()
    bound = token_request(raw, ns, "robot", {"boundObjectRef": {"apiVersion": "v1", "kind": "Node", "name": node_name}})
    assert bound.status == 201, bound
    status = review(raw, bound.json()["status"]["token"])
    assert status["user"]["extra"]["authentication.kubernetes.io/node-name"] == [node_name]
    assert status["user"]["extra"]["authentication.kubernetes.io/node-uid"] == [node["metadata"]["uid"]]
    raw.delete(f"/api/v1/nodes/{node_name}")
    assert review(raw, bound.json()["status"]["token"]) == {
        "user": {}, "error": "[invalid bearer token, service account token has been invalidated]"}


# --- authentication and TokenReview -------------------------------------------------------------


def test_token_as_bearer(server: ServerProcess, raw: Raw, ns: str) -> None:
    account = create_sa(raw, ns, "reader")
    token = token_request(raw, ns, "reader").json()["status"]["token"]
    code, body = bearer(server, "GET", f"/api/v1/namespaces/{ns}/pods", token)
    assert code == 200 and body["kind"] == "PodList"
    code, body = bearer(server, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token,
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert code == 201
    info = body["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{ns}:reader"
    assert info["uid"] == account["metadata"]["uid"]
    assert info["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    assert info["extra"]["authentication.kubernetes.io/credential-id"] == [f"JTI={decode(token)[1]['jti']}"]
    h, p, s = token.split(".")
    claims = decode(token)[1]
    forged = jwt.b64encode(json.dumps({**claims, "sub": "system:serviceaccount:kube-system:admin"}).encode())
    assert bearer(server, "GET", f"/api/v1/namespaces/{ns}/pods", f"{h}.{forged}.{s}")[0] == 401
    # another audience is not for this API
    other = token_request(raw, ns, "reader", {"audiences": ["vault"]}).json()["status"]["token"]
    assert bearer(server, "GET", f"/api/v1/namespaces/{ns}/pods", other)[0] == 401
    raw.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/reader")
    assert bearer(server, "GET", f"/api/v1/namespaces/{ns}/pods", token)[0] == 401


def test_token_review_audiences(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "robot")
    token = token_request(raw, ns, "robot", {"audiences": ["vault", ISSUER]}).json()["status"]["token"]
    assert review(raw, token)["audiences"] == [ISSUER]
    status = review(raw, token, ["vault", "x"])
    assert status["authenticated"] is True and status["audiences"] == ["vault"]
    assert review(raw, token, ["x"]) == {
        "user": {}, "error": f'[invalid bearer token, token audiences ["vault" "{ISSUER}"] is invalid for the '
                             'target audiences ["x"]]'}
    assert review(raw, "garbage") == {"user": {}, "error": "[invalid bearer token, token lookup failed]"}


# --- OIDC discovery -----------------------------------------------------------------------------


def test_oidc_discovery(server: ServerProcess, raw: Raw, ns: str) -> None:
    config = raw.get("/.well-known/openid-configuration")
    assert config.status == 200 and config.headers["Content-Type"].startswith("application/json")
    assert config.json() == {
        "issuer": ISSUER, "jwks_uri": f"{ISSUER}/openid/v1/jwks", "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"]}
    jwks = raw.get("/openid/v1/jwks")
    assert jwks.status == 200 and jwks.headers["Content-Type"].startswith("application/jwk-set+json")
    [key] = jwks.json()["keys"]
    assert (key["use"], key["kty"], key["alg"], key["e"]) == ("sig", "RSA", "RS256", "AQAB")
    public = rsa.RSAPublicNumbers(int.from_bytes(jwt.b64decode(key["e"]), "big"),
                                  int.from_bytes(jwt.b64decode(key["n"]), "big")).public_key()
    create_sa(raw, ns, "robot")
    token = token_request(raw, ns, "robot").json()["status"]["token"]
    assert decode(token)[0]["kid"] == key["kid"] == jwt.key_id(public)
    assert jwt.verify(token, [public])["sub"] == f"system:serviceaccount:{ns}:robot"
    # the key pair kubeadm-style in the data dir: sa.key (private, 0600) and sa.pub
    pki = server.data_dir / "pki"
    assert (pki / "sa.key").stat().st_mode & 0o777 == 0o600
    assert [jwt.key_id(k) for k in load_public_keys(pki / "sa.pub")] == [key["kid"]]


# --- the ServiceAccount admission plugin --------------------------------------------------------


def test_pod_gets_default_account_and_token_volume(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "default", imagePullSecrets=[{"name": "regcred"}])
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods",
                    pod("p", initContainers=[{"name": "init", "image": "busybox"}]))
    assert resp.status == 201, resp
    spec = resp.json()["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    [volume] = spec["volumes"]
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume["name"])
    assert volume["projected"] == {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
        "defaultMode": 420,
    }
    mount = {"name": volume["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert spec["containers"][0]["volumeMounts"] == [mount]
    assert spec["initContainers"][0]["volumeMounts"] == [mount]


def test_automount_opt_out(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "default")
    create_sa(raw, ns, "quiet", automountServiceAccountToken=False)
    off = raw.post(f"/api/v1/namespaces/{ns}/pods", pod("off", automountServiceAccountToken=False)).json()["spec"]
    assert "volumes" not in off and "volumeMounts" not in off["containers"][0]
    quiet = raw.post(f"/api/v1/namespaces/{ns}/pods", pod("quiet", serviceAccountName="quiet")).json()["spec"]
    assert "volumes" not in quiet
    # the pod's own choice wins over the account's
    loud = raw.post(f"/api/v1/namespaces/{ns}/pods",
                    pod("loud", serviceAccountName="quiet", automountServiceAccountToken=True)).json()["spec"]
    assert loud["volumes"][0]["name"].startswith("kube-api-access-")


def test_missing_service_account_is_forbidden(raw: Raw, ns: str) -> None:
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods", pod("p", serviceAccountName="ghost"))
    assert resp.status == 403
    assert resp.json()["message"] == (f'pods "p" is forbidden: error looking up service account {ns}/ghost: '
                                      'serviceaccount "ghost" not found')
    assert resp.json()["details"] == {"name": "p", "kind": "pods"}
    started = time.monotonic()
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods", pod("q"))  # `default` is waited for, ~1-2 s, then refused
    assert resp.status == 403 and 'serviceaccount "default" not found' in resp.json()["message"]
    assert time.monotonic() - started >= 0.9
    mirror = pod("m", serviceAccountName="ghost")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods", mirror)
    assert resp.status == 403
    assert resp.json()["message"] == 'pods "m" is forbidden: a mirror pod may not reference service accounts'


def test_enforce_mountable_secrets(raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "strict", metadata={"name": "strict",
                                           "annotations": {"kubernetes.io/enforce-mountable-secrets": "true"}},
              secrets=[{"name": "allowed"}])
    ok = pod("ok", serviceAccountName="strict", volumes=[{"name": "s", "secret": {"secretName": "allowed"}}])
    assert raw.post(f"/api/v1/namespaces/{ns}/pods", ok).status == 201
    bad_volume = pod("v", serviceAccountName="strict", volumes=[{"name": "s", "secret": {"secretName": "other"}}])
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods", bad_volume)
    assert resp.status == 403
    assert resp.json()["message"] == ('pods "v" is forbidden: volume with secret.secretName="other" is not allowed '
                                      "because service account strict does not reference that secret")
    bad_env = pod("e", serviceAccountName="strict")
    bad_env["spec"]["containers"][0]["env"] = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods", bad_env)
    assert resp.status == 403
    assert resp.json()["message"] == ('pods "e" is forbidden: container c with envVar PW referencing '
                                      'secret.secretName="x" is not allowed because service account strict does not '
                                      "reference that secret")
    pulls = pod("i", serviceAccountName="strict", imagePullSecrets=[{"name": "regcred"}])
    resp = raw.post(f"/api/v1/namespaces/{ns}/pods", pulls)
    assert resp.status == 403
    assert resp.json()["message"] == ('pods "i" is forbidden: imagePullSecrets[0].name="regcred" is not allowed '
                                      "because service account strict does not reference that imagePullSecret")


# --- keys survive a restart ---------------------------------------------------------------------


def test_tokens_survive_a_restart(server: ServerProcess, raw: Raw, ns: str) -> None:
    create_sa(raw, ns, "robot")
    token = token_request(raw, ns, "robot").json()["status"]["token"]
    server.stop()
    server.start()
    assert review(Raw(server.kubeconfig), token)["authenticated"] is True
