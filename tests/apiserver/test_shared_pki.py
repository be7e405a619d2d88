"""Several API servers on one data directory share its PKI: a second server's start extends the
serving certificate's names instead of replacing them, the CA is never replaced, and servers
starting at the same moment agree on one CA, one serving key pair and one service-account key."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pykube_server.apiserver import certs


def _serving(pki: certs.Pki) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.serving_cert_path.read_bytes())


def test_second_server_extends_the_serving_cert_and_keeps_the_ca(tmp_path: Path) -> None:
    first = certs.ensure_pki(tmp_path, extra_sans=["127.96.0.1", "127.0.0.2"])
    ca_pem = first.ca_cert_path.read_bytes()
    second = certs.ensure_pki(tmp_path, extra_sans=["127.96.0.1", "127.0.0.3", "cp-2.example"])
    assert second.ca_cert_path.read_bytes() == ca_pem
    sans = certs.certificate_sans(_serving(second))
    assert {"127.0.0.2", "127.0.0.3", "cp-2.example", "127.96.0.1", *certs.DEFAULT_SANS} <= sans
    _serving(second).verify_directly_issued_by(second.ca.cert)
    # The first server restarting finds its names there: nothing is reissued (no flip-flop).
    before = second.serving_cert_path.read_bytes()
    certs.ensure_pki(tmp_path, extra_sans=["127.96.0.1", "127.0.0.2"])
    assert second.serving_cert_path.read_bytes() == before
    certs.server_ssl_context(second)  # key and certificate still belong together


SCRIPT = textwrap.dedent("""
    import hashlib, sys
    from pathlib import Path
    from pykube_server.apiserver import certs
    from pykube_server.apiserver.serviceaccount import keys
    pki = certs.ensure_pki(Path(sys.argv[1]), extra_sans=[sys.argv[2]])
    _, pub = keys.ensure_key_pair(Path(sys.argv[1]))
    print(hashlib.sha256(pki.ca.cert_pem).hexdigest(), hashlib.sha256(pub.read_bytes()).hexdigest())
""")


def test_servers_starting_at_once_agree_on_one_pki(tmp_path: Path) -> None:
    addresses = [f"127.0.0.{i}" for i in range(2, 6)]
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "pki"), a],
                              stdout=subprocess.PIPE, text=True) for a in addresses]
    seen = set()
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        seen.add(out.strip())
    pki = certs.ensure_pki(tmp_path / "pki")
    ca_hash = hashlib.sha256(pki.ca_cert_path.read_bytes()).hexdigest()
    pub_hash = hashlib.sha256((tmp_path / "pki" / "sa.pub").read_bytes()).hexdigest()
    assert seen == {f"{ca_hash} {pub_hash}"}  # every process used the one CA and key pair left on disk
    serving = _serving(pki)
    assert set(addresses) <= certs.certificate_sans(serving)  # no start dropped another's address
    serving.verify_directly_issued_by(pki.ca.cert)
    key = serialization.load_pem_private_key(pki.serving_key_path.read_bytes(), password=None)
    assert key.public_key().public_numbers() == serving.public_key().public_numbers()  # type: ignore[union-attr]
