"""wireproxy's local CA for the forward proxy's TLS interception, and the leaf certificates it
mints per host.

`wireproxy ca init` writes the CA certificate (give it to clients: SSL_CERT_FILE, their trust
store, or httpx's `verify=`) and its private key (0600, written whole or not at all). The proxy
mints one leaf certificate per host name it is asked for (SNI, else the CONNECT host), signed
by the CA, valid for that name only, and caches the SSL contexts (LRU).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections import OrderedDict
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_CERT = "wireproxy-ca.crt"
DEFAULT_KEY = "wireproxy-ca.key"
LEAF_CACHE = 256


class CaError(Exception):
    pass


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def init_ca(cert_path: Path, key_path: Path, *, name: str = "wireproxy local CA", force: bool = False) -> None:
    if not force and (cert_path.exists() or key_path.exists()):
        raise CaError(f"{cert_path if cert_path.exists() else key_path} exists; pass --force to replace the CA")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wireproxy")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class LeafMinter:
    def __init__(self, cert_path: Path, key_path: Path):
        try:
            self.ca_cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
            self.ca_key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        except FileNotFoundError as exc:
            raise CaError(f"{exc.filename} not found: run `wireproxy ca init` first") from None
        except (ValueError, OSError) as exc:
            raise CaError(f"cannot load the CA ({cert_path}, {key_path}): {exc}") from None
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())   # one key for every leaf
        self._key_pem = self.leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()

    def leaf_pem(self, host: str) -> bytes:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        ski = self.ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
                .issuer_name(self.ca_cert.subject).public_key(self.leaf_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=397))
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)

    def context_for(self, host: str) -> ssl.SSLContext:
        host = host.lower().rstrip(".")
        context = self._contexts.get(host)
        if context is not None:
            self._contexts.move_to_end(host)
            return context
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        with tempfile.TemporaryDirectory() as private:      # load_cert_chain reads files only
            chain = Path(private) / "leaf.pem"
            fd = os.open(chain, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.leaf_pem(host) + self._key_pem)
            context.load_cert_chain(chain)
        self._contexts[host] = context
        if len(self._contexts) > LEAF_CACHE:
            self._contexts.popitem(last=False)
        return context

    def server_context(self, default_host: str, seen: list[str]) -> ssl.SSLContext:
        """A context for one intercepted connection: the leaf of the SNI name (appended to
        `seen`), else of the CONNECT host."""
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.minimum_version = ssl.TLSVersion.TLSv1_2
        base.set_alpn_protocols(["http/1.1"])
        default = self.context_for(default_host)

        def pick(sslobj, server_name, _context):
            name = server_name or default_host
            seen.append(name)
            sslobj.context = self.context_for(name) if server_name else default
        base.sni_callback = pick
        return base
