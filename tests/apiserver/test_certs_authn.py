"""TLS, identities, authentication and the 403 texts, checked with the real clients.

A tiny aiohttp HTTPS app (our SSL context + authentication middleware, an echo handler) runs on
an ephemeral loopback port; the official Python client and, when present, the real kubectl
talk to it through kubeconfigs written by `write_kubeconfig`. Facts recorded here:

* kube-apiserver's union authenticator tries x509 before bearer tokens and keeps going after a
  failure, so a valid client cert wins over a bogus token; a bogus token alone is a 401 even on
  `/healthz` (anonymous is only the fallback for requests with *no* credentials).
* `--token-auth-file` is Go CSV: `token,user,uid[,"g1,g2"]`, at least 3 fields, empty tokens
  skipped, the last duplicate wins.
* 1.32+ adds `authentication.kubernetes.io/credential-id: X509SHA256=<sha256(DER)>` to cert users.
* 403 texts come from apiserver's responsewriters: HTML-escaped, `<gr> "<name>" is forbidden: ...`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import ssl
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykube_server.apiserver import certs
from pykube_server.apiserver.authn import (
    USER,
    AuthenticationFailed,
    Authenticator,
    TokenAuthenticator,
    TokenFileError,
    UserInfo,
    authentication_middleware,
    bearer_token,
    is_public_path,
)
from pykube_server.apiserver.authz import (
    AlwaysAllow,
    AlwaysDeny,
    AuthorizerChain,
    Decision,
    PrivilegedGroups,
    RequestAttributes,
    forbidden,
)
from pykube_server.apiserver.kubeconfig import write_kubeconfig

KUBECTL = "/usr/bin/kubectl"
UNAUTHORIZED_BODY = (  # Go's json.Encoder ends every API object with a newline
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
    b'"message":"Unauthorized","reason":"Unauthorized","code":401}\n'
)
VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.1"}
TOKEN_FILE = 'tok-alice,alice,u-alice,"devs,qa"\ntok-bob,bob,u-bob\n'


# --- fixtures -----------------------------------------------------------------------------------


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(request[USER].to_status(), dumps=lambda o: orjson.dumps(o).decode())


async def _version(request: web.Request) -> web.Response:
    return web.json_response(VERSION)


def _app(tokens: TokenAuthenticator) -> web.Application:
    app = web.Application(middlewares=[authentication_middleware(Authenticator(tokens=[tokens]))])
    for path in ("/whoami-echo", "/healthz", "/readyz/ping", "/healthzfoo", "/version/"):
        app.router.add_get(path, _echo)
    app.router.add_get("/version", _version)
    return app


@dataclass
class Server:
    url: str
    pki: certs.Pki
    tmp: Path


async def _start(pki: certs.Pki, tokens: TokenAuthenticator) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(_app(tokens))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_ssl_context(pki))
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"https://{host}:{port}"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text(TOKEN_FILE)
    return path


@pytest.fixture
async def server(tmp_path: Path, token_file: Path) -> AsyncIterator[Server]:
    pki = certs.ensure_pki(tmp_path / "pki", extra_sans=["127.96.0.1"])
    runner, url = await _start(pki, TokenAuthenticator.load(token_file))
    try:
        yield Server(url=url, pki=pki, tmp=tmp_path)
    finally:
        await runner.cleanup()


def _admin_kubeconfig(srv: Server, name: str = "admin.conf") -> Path:
    cert, key = certs.issue_client_cert(srv.pki.ca, "kubernetes-admin", ["system:masters"])
    return write_kubeconfig(
        srv.tmp / "kube" / name, server=srv.url, ca_pem=srv.pki.ca.cert_pem,
        client_cert_pem=cert, client_key_pem=key,
    )


def _token_kubeconfig(srv: Server, token: str) -> Path:
    return write_kubeconfig(srv.tmp / "kube" / "token.conf", server=srv.url, ca_pem=srv.pki.ca.cert_pem, token=token)


def _python_client_get(kubeconfig: Path, path: str) -> tuple[int, bytes]:
    """A raw GET through the official client: its TLS, its auth settings, its kubeconfig loader."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        params = api.param_serialize("GET", path, auth_settings=["BearerToken"])
        response = api.call_api(*params)
        response.read()
        return response.status, response.data
    finally:
        api.close()


async def _raw_get(
    srv: Server, path: str, *, token: str | None = None, cert: tuple[bytes, bytes] | None = None
) -> tuple[int, bytes]:
    cert_file = key_file = None
    if cert is not None:
        cert_file, key_file = srv.tmp / "raw.crt", srv.tmp / "raw.key"
        cert_file.write_bytes(cert[0])
        key_file.write_bytes(cert[1])
    ctx = certs.client_ssl_context(ca_file=srv.pki.ca_cert_path, cert_file=cert_file, key_file=key_file)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(srv.url + path, ssl=ctx, headers=headers) as resp:
            return resp.status, await resp.read()


# --- PKI ----------------------------------------------------------------------------------------


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ensure_pki_writes_ca_and_serving_cert(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path / "pki", extra_sans=["127.96.0.1", "node-1.example"])
    ca, serving = _load(pki.ca_cert_path), _load(pki.serving_cert_path)
    assert ca.subject.rfc4514_string() == "CN=kubernetes"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650
    assert 365 <= (serving.not_valid_after_utc - serving.not_valid_before_utc).days <= 366
    serving.verify_directly_issued_by(ca)
    assert certs.certificate_sans(serving) == {*certs.DEFAULT_SANS, "127.96.0.1", "node-1.example"}
    eku = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    for key in (pki.ca_key_path, pki.serving_key_path):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_ensure_pki_reuses_existing_files(tmp_path: Path) -> None:
    first = certs.ensure_pki(tmp_path, extra_sans=["127.96.0.1"])
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    second = certs.ensure_pki(tmp_path, extra_sans=["127.96.0.1"])
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert second.ca.cert == first.ca.cert


def test_ensure_pki_reissues_serving_cert_for_a_new_san_but_keeps_the_ca(tmp_path: Path) -> None:
    certs.ensure_pki(tmp_path)
    ca_before = (tmp_path / "ca.crt").read_bytes()
    serving_before = (tmp_path / "apiserver.crt").read_bytes()
    pki = certs.ensure_pki(tmp_path, extra_sans=["10.0.0.7"])
    assert pki.ca_cert_path.read_bytes() == ca_before
    assert pki.serving_cert_path.read_bytes() != serving_before
    assert "10.0.0.7" in certs.certificate_sans(_load(pki.serving_cert_path))


def test_ensure_pki_reissues_serving_cert_signed_by_another_ca(tmp_path: Path) -> None:
    other = certs.ensure_pki(tmp_path / "other")
    certs.ensure_pki(tmp_path / "pki")
    shutil.copy(other.serving_cert_path, tmp_path / "pki" / "apiserver.crt")
    shutil.copy(other.serving_key_path, tmp_path / "pki" / "apiserver.key")
    pki = certs.ensure_pki(tmp_path / "pki")
    _load(pki.serving_cert_path).verify_directly_issued_by(pki.ca.cert)


def test_issue_client_cert_subject_and_usage(tmp_path: Path) -> None:
    pki = certs.ensure_pki(tmp_path)
    cert_pem, key_pem = certs.issue_client_cert(pki.ca, "kubernetes-admin", ["system:masters", "ops"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.rfc4514_string() == "CN=kubernetes-admin,O=ops,O=system:masters"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters", "ops"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    cert.verify_directly_issued_by(pki.ca.cert)


# --- kubeconfig ---------------------------------------------------------------------------------


def test_write_kubeconfig_layout_and_mode(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path / "a" / "b" / "admin.conf", server="https://127.0.0.1:6443", ca_pem=b"CA",
        client_cert_pem=b"CERT", client_key_pem=b"KEY",
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "pykube", "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="}}],
        "contexts": [{"name": "pykube", "context": {"cluster": "pykube", "user": "pykube-admin"}}],
        "current-context": "pykube",
        "preferences": {},
        "users": [{"name": "pykube-admin", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}}],
    }


# --- token file and bearer header ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "token", "expected"),
    [
        ('t1,alice,u1,"g1,g2"\n', "t1", UserInfo("alice", "u1", ("g1", "g2"))),
        ("t1,alice,u1\n", "t1", UserInfo("alice", "u1", ())),
        ("t1,alice,u1,g1\n", "t1", UserInfo("alice", "u1", ("g1",))),
        ('t1,alice,u1,"g1,g2",extra,ignored\n', "t1", UserInfo("alice", "u1", ("g1", "g2"))),
        ("\n\nt1,alice,u1\r\n\n", "t1", UserInfo("alice", "u1", ())),
        ("t1,alice,u1\nt1,bob,u2\n", "t1", UserInfo("bob", "u2", ())),
        (",alice,u1\n", "", None),
        ("t1,alice,u1\n", "t2", None),
        ('"t,1","al""ice",u1\n', "t,1", UserInfo('al"ice', "u1", ())),
        (" t1,alice,u1\n", "t1", None),  # Go's csv does not trim: the token is " t1"
    ],
    ids=["quoted-groups", "no-groups", "one-group", "extra-fields", "blank-lines-crlf", "last-duplicate-wins",
         "empty-token-skipped", "unknown-token", "quoting", "no-trim"],
)
def test_token_file_format(text: str, token: str, expected: UserInfo | None) -> None:
    assert TokenAuthenticator.parse(text).authenticate(token) == expected


def test_token_file_with_too_few_columns_fails_like_kube(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("t1,alice,u1\nt2,bob\n")
    with pytest.raises(TokenFileError) as err:
        TokenAuthenticator.load(path)
    assert str(err.value) == (
        f"token file '{path}' must have at least 3 columns (token, user name, user uid), found 2"
    )


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("  Bearer abc  ", "abc"),
        ("Bearer  abc", None),
        ("Bearer", None),
        ("Basic YWxpY2U6cHc=", None),
        ("Bearer abc def", "abc"),
        (None, None),
    ],
)
def test_bearer_token_header_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("path", "public"),
    [("/healthz", True), ("/readyz/ping", True), ("/version/", True), ("/livez", True),
     ("/healthzfoo", False), ("/api", False), ("/", False)],
)
def test_public_paths(path: str, public: bool) -> None:
    assert is_public_path(path, ("/healthz", "/livez", "/readyz", "/version")) is public


class _PlainTransport:
    """A transport without TLS, so `peer_certificate` finds nothing."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def _mocked(headers: dict[str, str]) -> web.Request:
    return make_mocked_request("GET", "/whoami-echo", headers=headers, transport=_PlainTransport())


async def test_authorization_header_is_ignored_without_token_sources() -> None:
    # kube-apiserver without any token authenticator treats a bearer token as no credential.
    assert await Authenticator().authenticate(_mocked({"Authorization": "Bearer x"})) is None


async def test_unknown_token_fails_and_known_token_gets_authenticated_group() -> None:
    authenticator = Authenticator(tokens=[TokenAuthenticator.parse(TOKEN_FILE)])
    with pytest.raises(AuthenticationFailed):
        await authenticator.authenticate(_mocked({"Authorization": "Bearer nope"}))
    user = await authenticator.authenticate(_mocked({"Authorization": "Bearer tok-bob"}))
    assert user == UserInfo("bob", "u-bob", ("system:authenticated",))
    assert await authenticator.authenticate(_mocked({})) is None


# --- end to end over HTTPS ----------------------------------------------------------------------


async def test_python_client_with_admin_client_cert(server: Server) -> None:
    kubeconfig = _admin_kubeconfig(server)
    status, body = await asyncio.to_thread(_python_client_get, kubeconfig, "/whoami-echo")
    assert status == 200
    user = orjson.loads(body)
    assert user["username"] == "kubernetes-admin"
    assert user["groups"] == ["system:masters", "system:authenticated"]
    cert_data = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["client-certificate-data"]
    der = x509.load_pem_x509_certificate(base64.b64decode(cert_data)).public_bytes(serialization.Encoding.DER)
    assert user["extra"] == {
        "authentication.kubernetes.io/credential-id": ["X509SHA256=" + hashlib.sha256(der).hexdigest()]
    }


async def test_python_client_with_bearer_token_from_token_file(server: Server) -> None:
    status, body = await asyncio.to_thread(_python_client_get, _token_kubeconfig(server, "tok-alice"), "/whoami-echo")
    assert (status, orjson.loads(body)) == (
        200, {"username": "alice", "uid": "u-alice", "groups": ["devs", "qa", "system:authenticated"]}
    )


async def test_python_client_with_unknown_token_is_401(server: Server) -> None:
    status, body = await asyncio.to_thread(_python_client_get, _token_kubeconfig(server, "nope"), "/whoami-echo")
    assert (status, body) == (401, UNAUTHORIZED_BODY)


async def test_no_credentials_is_401_with_kube_status_body(server: Server) -> None:
    assert await _raw_get(server, "/whoami-echo") == (401, UNAUTHORIZED_BODY)
    assert await _raw_get(server, "/healthzfoo") == (401, UNAUTHORIZED_BODY)


@pytest.mark.parametrize("path", ["/healthz", "/readyz/ping", "/version/"])
async def test_public_paths_are_served_to_anonymous(server: Server, path: str) -> None:
    status, body = await _raw_get(server, path)
    assert (status, orjson.loads(body)) == (200, {"username": "system:anonymous", "groups": ["system:unauthenticated"]})


async def test_invalid_token_is_401_even_on_a_public_path(server: Server) -> None:
    assert await _raw_get(server, "/healthz", token="nope") == (401, UNAUTHORIZED_BODY)


async def test_client_cert_wins_over_invalid_and_valid_tokens(server: Server) -> None:
    cert = certs.issue_client_cert(server.pki.ca, "carol", ["devs"])
    for token in ("nope", "tok-alice"):
        status, body = await _raw_get(server, "/whoami-echo", token=token, cert=cert)
        assert status == 200
        assert orjson.loads(body)["username"] == "carol"


async def test_client_cert_from_a_foreign_ca_fails_the_handshake(server: Server, tmp_path: Path) -> None:
    # Divergence from Go (which answers 401): OpenSSL verifies the peer during the handshake.
    foreign = certs.ensure_pki(tmp_path / "foreign")
    cert = certs.issue_client_cert(foreign.ca, "mallory", ["system:masters"])
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await _raw_get(server, "/whoami-echo", cert=cert)


async def test_certs_and_kubeconfig_survive_a_restart(tmp_path: Path, token_file: Path) -> None:
    pki = certs.ensure_pki(tmp_path / "pki")
    runner, url = await _start(pki, TokenAuthenticator.load(token_file))
    srv = Server(url=url, pki=pki, tmp=tmp_path)
    kubeconfig = _admin_kubeconfig(srv)
    await runner.cleanup()

    pki_again = certs.ensure_pki(tmp_path / "pki")
    runner, url_again = await _start(pki_again, TokenAuthenticator.load(token_file))
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = url_again
        kubeconfig.write_text(yaml.safe_dump(config))
        status, body = await asyncio.to_thread(_python_client_get, kubeconfig, "/whoami-echo")
        assert (status, orjson.loads(body)["username"]) == (200, "kubernetes-admin")
    finally:
        await runner.cleanup()


# --- kubectl ------------------------------------------------------------------------------------


async def _kubectl(srv: Server, kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    if not os.path.exists(KUBECTL):
        pytest.skip(f"{KUBECTL} is not installed")
    home = srv.tmp / "home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.kubectl
async def test_kubectl_get_raw_with_admin_cert(server: Server) -> None:
    code, out, err = await _kubectl(server, _admin_kubeconfig(server), "get", "--raw", "/whoami-echo")
    assert code == 0, err
    assert orjson.loads(out)["groups"] == ["system:masters", "system:authenticated"]


@pytest.mark.kubectl
async def test_kubectl_get_raw_with_token(server: Server) -> None:
    code, out, err = await _kubectl(server, _token_kubeconfig(server, "tok-bob"), "get", "--raw", "/whoami-echo")
    assert code == 0, err
    assert orjson.loads(out) == {"username": "bob", "uid": "u-bob", "groups": ["system:authenticated"]}


@pytest.mark.kubectl
async def test_kubectl_unauthorized_message(server: Server) -> None:
    code, _, err = await _kubectl(server, _token_kubeconfig(server, "nope"), "get", "--raw", "/whoami-echo")
    assert code == 1
    assert err.strip() == "error: You must be logged in to the server (Unauthorized)"


# --- authorization seam and 403 texts -----------------------------------------------------------

ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))


@pytest.mark.parametrize(
    ("attrs", "message", "details"),
    [
        (RequestAttributes(ALICE, "get", namespace="default", api_version="v1", resource="pods", name="p", resource_request=True),
         'pods "p" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default"',
         {"name": "p", "kind": "pods"}),
        (RequestAttributes(ALICE, "list", api_group="apps", api_version="v1", resource="deployments", resource_request=True),
         'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope',
         {"group": "apps", "kind": "deployments"}),
        (RequestAttributes(ALICE, "create", namespace="ns", api_version="v1", resource="pods", subresource="exec", name="p", resource_request=True),
         'pods "p" is forbidden: User "alice" cannot create resource "pods/exec" in API group "" in the namespace "ns"',
         {"name": "p", "kind": "pods"}),
        (RequestAttributes(UserInfo("x"), "get", path="/foo"),
         'forbidden: User "x" cannot get path "/foo"', {}),
        (RequestAttributes(UserInfo("system:anonymous"), "get", path="/<b>&"),
         'forbidden: User "system:anonymous" cannot get path "/&lt;b&gt;&amp;"', {}),
    ],
    ids=["namespaced", "cluster-scope-list", "subresource", "non-resource", "html-escaped"],
)
def test_forbidden_messages(attrs: RequestAttributes, message: str, details: dict[str, str]) -> None:
    err = forbidden(attrs)
    assert err.status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Forbidden", "details": details, "code": 403,
    }


def test_forbidden_appends_the_authorizer_reason() -> None:
    attrs = RequestAttributes(ALICE, "get", path="/foo")
    assert forbidden(attrs, "Everything is forbidden.").message == (
        'forbidden: User "alice" cannot get path "/foo": Everything is forbidden.'
    )


async def test_authorizer_chain() -> None:
    admin = RequestAttributes(UserInfo("kubernetes-admin", groups=("system:masters",)), "get", path="/")
    alice = RequestAttributes(ALICE, "get", path="/")
    assert await AlwaysAllow().authorize(alice) == (Decision.ALLOW, "")
    chain = AuthorizerChain(PrivilegedGroups(), AlwaysDeny())
    assert await chain.authorize(admin) == (Decision.ALLOW, "")
    assert await chain.authorize(alice) == (Decision.NO_OPINION, "Everything is forbidden.")
