"""The cluster's PKI: a CA, the API server's serving certificate, and client identities.

A kubeadm cluster keeps a self-signed CA (`CN=kubernetes`, 10 years) and a serving certificate
signed by it (1 year) whose SANs cover every name clients dial: loopback, the `kubernetes`
Service names and the first Service IP. Client identities are certificates from the same CA
whose CN is the user name and whose O values are the groups (admin: `kubernetes-admin` in
`system:masters`). We do the same, with EC P-256 keys because they are generated in
milliseconds, so tests can build a fresh PKI each time.

`ensure_pki` is idempotent: the first start writes the files, later starts reuse them, and only
the serving certificate is reissued when it no longer fits (a requested SAN is missing, it
expires within `RENEW_BEFORE`, or another CA signed it). The CA is never replaced: every
kubeconfig ever written trusts it. Files are written atomically; keys are mode 0600.

Several API servers may share one data directory (one store such as etcd, each on its own
address or port). A reissue therefore *adds* the requested names to those the certificate
already had, so the first server's address stays in it when the second starts (and neither
start undoes the other's), and the whole load-or-write runs under an exclusive lock on
`pki/.lock`, so two servers starting at once never both create a CA or read a key that does
not match its certificate.

The server context *requests* a client certificate but does not require one (`CERT_OPTIONAL`):
kubectl only presents its certificate when asked, and token or anonymous clients must still get
through the handshake. Unlike Go's `RequestClientCert`, OpenSSL rejects a certificate that does
not chain to the CA during the handshake, so such a client sees a TLS error rather than a 401.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "kubernetes"
SERVING_COMMON_NAME = "kube-apiserver"
ADMIN_COMMON_NAME = "kubernetes-admin"
ADMIN_ORGANIZATION = "system:masters"
DEFAULT_SANS: tuple[str, ...] = (
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
# Backdating tolerates small clock skew between the machines of a spread-out cluster.
BACKDATE = dt.timedelta(minutes=5)

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
SERVING_CERT_FILE = "apiserver.crt"
SERVING_KEY_FILE = "apiserver.key"
LOCK_FILE = ".lock"

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A loaded CA: signs serving and client certificates."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class Pki:
    """Where the PKI lives on disk, plus the loaded CA for issuing client certificates."""

    directory: Path
    ca: CertificateAuthority

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def ca_key_path(self) -> Path:
        return self.directory / CA_KEY_FILE

    @property
    def serving_cert_path(self) -> Path:
        return self.directory / SERVING_CERT_FILE

    @property
    def serving_key_path(self) -> Path:
        return self.directory / SERVING_KEY_FILE


# --- entry points -------------------------------------------------------------------------------


def ensure_pki(directory: str | os.PathLike[str], *, extra_sans: Iterable[str] = ()) -> Pki:
    """Load or create the CA and serving certificate in `directory` (created 0700 if missing).

    `extra_sans` are IP addresses or DNS names added to `DEFAULT_SANS` (e.g. the first Service IP
    `127.96.0.1`, a node's address). Safe to call on every start; see the module docstring for
    when the serving certificate is reissued.
    """
    pki_dir = Path(directory)
    pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with pki_lock(pki_dir):
        ca = _load_or_create_ca(pki_dir)
        sans = _dedupe((*DEFAULT_SANS, *extra_sans))
        pki = Pki(directory=pki_dir, ca=ca)
        if not _serving_cert_usable(pki, sans):
            # Keep the names already served: another API server on this data dir may need them.
            cert_pem, key_pem = issue_serving_cert(ca, _dedupe((*sans, *sorted(_current_sans(pki)))))
            _write_pair(pki.serving_cert_path, cert_pem, pki.serving_key_path, key_pem)
    return pki


def issue_client_cert(
    ca: CertificateAuthority, common_name: str, organizations: Iterable[str] = ()
) -> tuple[bytes, bytes]:
    """A client certificate (PEM, with its PEM key) for user `common_name` in groups `organizations`.

    kube-apiserver reads the user name from the CN and the groups from the O values, in order.
    """
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    key = _new_key()
    builder = _leaf_builder(ca, x509.Name(subject), key).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    return _sign(builder, ca), _key_pem(key)


def issue_serving_cert(ca: CertificateAuthority, sans: Iterable[str]) -> tuple[bytes, bytes]:
    """A serving certificate (PEM, with its PEM key) valid for every name in `sans`."""
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVING_COMMON_NAME)])
    builder = (
        _leaf_builder(ca, subject, key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sans]), critical=False)
    )
    return _sign(builder, ca), _key_pem(key)


def server_ssl_context(pki: Pki) -> ssl.SSLContext:
    """TLS for the API server: serves `apiserver.crt`, requests (not requires) client certs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with pki_lock(pki.directory):  # not between another server's key and certificate writes
        ctx.load_cert_chain(pki.serving_cert_path, pki.serving_key_path)
    ctx.load_verify_locations(cafile=pki.ca_cert_path)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    # aiohttp speaks HTTP/1.1 only; kubectl offers h2 first and falls back on this answer.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_ssl_context(
    *,
    ca_file: str | os.PathLike[str],
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """TLS for a client of the API server: verifies the cluster CA, optionally presents a cert."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.fspath(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def write_client_cert(
    pki: Pki, name: str, *, common_name: str, organizations: Iterable[str] = ()
) -> tuple[Path, Path]:
    """Issue a client certificate and store it as `<name>.crt`/`<name>.key` in the PKI dir.

    Always reissues: callers that want reuse check for the files first.
    """
    cert_pem, key_pem = issue_client_cert(pki.ca, common_name, organizations)
    cert_path, key_path = pki.directory / f"{name}.crt", pki.directory / f"{name}.key"
    _write_pair(cert_path, cert_pem, key_path, key_pem)
    return cert_path, key_path


def certificate_sans(cert: x509.Certificate) -> set[str]:
    """The SANs of `cert` as strings (IPs in their compressed form, DNS names as written)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    ips = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return ips | set(ext.get_values_for_type(x509.DNSName))


# --- front proxy (API aggregation) ---------------------------------------------------------------

FRONT_PROXY_CA_COMMON_NAME = "front-proxy-ca"
FRONT_PROXY_CLIENT_COMMON_NAME = "front-proxy-client"
FRONT_PROXY_CA_CERT_FILE = "front-proxy-ca.crt"
FRONT_PROXY_CA_KEY_FILE = "front-proxy-ca.key"
FRONT_PROXY_CLIENT_CERT_FILE = "front-proxy-client.crt"
FRONT_PROXY_CLIENT_KEY_FILE = "front-proxy-client.key"


@dataclass(frozen=True, slots=True)
class FrontProxy:
    """kubeadm's front-proxy pair: a CA of its own (extension API servers trust it for the
    X-Remote-* request headers, `--requestheader-client-ca-file`) and the client certificate the
    aggregator presents when it proxies (`--proxy-client-cert-file`, CN `front-proxy-client`)."""

    ca_cert_path: Path
    client_cert_path: Path
    client_key_path: Path

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert_path.read_bytes()


def ensure_front_proxy(directory: str | os.PathLike[str]) -> FrontProxy:
    """Load or create the front-proxy CA and client certificate in `directory` (idempotent;
    the client certificate is reissued when missing or near expiry, the CA never)."""
    pki_dir = Path(directory)
    pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_cert, ca_key = pki_dir / FRONT_PROXY_CA_CERT_FILE, pki_dir / FRONT_PROXY_CA_KEY_FILE
    if ca_cert.exists() and ca_key.exists():
        ca = _load_ca(ca_cert, ca_key)
    else:
        ca = _new_ca(FRONT_PROXY_CA_COMMON_NAME)
        _write_pair(ca_cert, ca.cert_pem, ca_key, _key_pem(ca.key))
    client_cert, client_key = pki_dir / FRONT_PROXY_CLIENT_CERT_FILE, pki_dir / FRONT_PROXY_CLIENT_KEY_FILE
    usable = client_cert.exists() and client_key.exists()
    if usable:
        cert = x509.load_pem_x509_certificate(client_cert.read_bytes())
        usable = cert.not_valid_after_utc - RENEW_BEFORE > _now() and cert.issuer == ca.cert.subject
    if not usable:
        cert_pem, key_pem = issue_client_cert(ca, FRONT_PROXY_CLIENT_COMMON_NAME)
        _write_pair(client_cert, cert_pem, client_key, key_pem)
    return FrontProxy(ca_cert, client_cert, client_key)


# --- CA -----------------------------------------------------------------------------------------


def _load_or_create_ca(pki_dir: Path) -> CertificateAuthority:
    cert_path, key_path = pki_dir / CA_CERT_FILE, pki_dir / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        return _load_ca(cert_path, key_path)
    ca = _new_ca()
    _write_pair(cert_path, ca.cert_pem, key_path, _key_pem(ca.key))
    return ca


def _load_ca(cert_path: Path, key_path: Path) -> CertificateAuthority:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: only EC CA keys are supported")
    return CertificateAuthority(cert=cert, key=key)


def _new_ca(common_name: str = CA_COMMON_NAME) -> CertificateAuthority:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
    )
    return CertificateAuthority(cert=builder.sign(key, hashes.SHA256()), key=key)


# --- leaf certificates --------------------------------------------------------------------------


def _leaf_builder(ca: CertificateAuthority, subject: x509.Name, key: PrivateKey) -> x509.CertificateBuilder:
    now = _now()
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    not_after = min(now + LEAF_VALIDITY, ca.cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )


def _serving_cert_usable(pki: Pki, sans: Iterable[str]) -> bool:
    if not (pki.serving_cert_path.exists() and pki.serving_key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(pki.serving_cert_path.read_bytes())
    if cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return False
    try:
        cert.verify_directly_issued_by(pki.ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    present = certificate_sans(cert)
    return all(_normalize_san(s) in present for s in sans)


def _current_sans(pki: Pki) -> set[str]:
    """The names the serving certificate on disk covers (none if there is none)."""
    try:
        return certificate_sans(x509.load_pem_x509_certificate(pki.serving_cert_path.read_bytes()))
    except (OSError, ValueError):
        return set()


@contextlib.contextmanager
def pki_lock(pki_dir: Path) -> Iterator[None]:
    """An exclusive lock between processes sharing `pki_dir` (released if the holder dies)."""
    fd = os.open(pki_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    # EC keys sign; keyEncipherment is an RSA-only usage, so kubeadm leaves it out for ECDSA.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _sign(builder: x509.CertificateBuilder, ca: CertificateAuthority) -> bytes:
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _general_name(san: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        return x509.DNSName(san)


def _normalize_san(san: str) -> str:
    try:
        return str(ipaddress.ip_address(san))
    except ValueError:
        return san


def _dedupe(sans: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_normalize_san(s) for s in sans if s))


# --- keys and files -----------------------------------------------------------------------------


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKey) -> bytes:
    # "EC PRIVATE KEY" (SEC1), the form kubeadm writes for ECDSA keys.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _serial() -> int:
    # RFC 5280: positive, at most 20 octets; 159 random bits stay within both limits.
    return secrets.randbits(159) | 1


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _write_pair(cert_path: Path, cert_pem: bytes, key_path: Path, key_pem: bytes) -> None:
    # The key lands first so a crash never leaves a certificate without its key.
    write_file_atomic(key_path, key_pem, mode=0o600)
    write_file_atomic(cert_path, cert_pem, mode=0o644)


def write_file_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to `path` via a temp file and rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
