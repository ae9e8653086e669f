"""Certificates for `gwsreplay sim --tls`: a private CA and a loopback server certificate.

The CA is made once per folder and reused, so a browser or NSS db that trusts it keeps
trusting it; the server certificate is re-issued at every start for the hosts asked for.
Files are written to a temporary name and renamed, so two simulators starting at once
never read half a file. Keys are ECDSA P-256, readable by the owner only.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gwsreplay.core.errors import UserError

DEFAULT_TLS_DIR = Path("~/.gwsreplay/sim-tls")
CA_NAME = "gwsreplay simulator CA"


class SimCertificates(NamedTuple):
    """Where the files are: ``ca`` is what clients trust (None for a certificate given by hand)."""

    ca: Path | None
    cert: Path
    key: Path


def generated_context(folder: Path, hosts: list[str]) -> tuple[SimCertificates, ssl.SSLContext]:
    """The folder's CA (made if missing), a fresh server certificate for ``hosts`` and its context.

    Under a lock on the folder, so simulators started together do not mix each other's files."""
    folder = folder.expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            files = _ensure_certificates(folder, hosts)
            return files, server_context(files.cert, files.key)
    except OSError as exc:
        raise UserError(f"cannot make TLS certificates in {folder}: {exc}") from None


def _ensure_certificates(folder: Path, hosts: list[str]) -> SimCertificates:
    try:
        ca_cert_path, ca_key_path = folder / "ca.pem", folder / "ca-key.pem"
        if ca_cert_path.exists() and ca_key_path.exists():
            ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
            ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        else:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca_cert = _ca_certificate(ca_key)
            _write(ca_key_path, _key_pem(ca_key), private=True)
            _write(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _server_certificate(key, ca_cert, ca_key, hosts)
        cert_path, key_path = folder / "server.pem", folder / "server-key.pem"
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot make TLS certificates in {folder}: {exc}") from None
    return SimCertificates(ca=ca_cert_path, cert=cert_path, key=key_path)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for aiohttp: HTTP/1.1 by ALPN (the simulator speaks no HTTP/2)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise UserError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


def certificate_hosts(listen_host: str) -> list[str]:
    """Names and addresses the certificate is for: loopback, plus the listen host if specific."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    if listen_host and listen_host not in hosts and not _is_unspecified(listen_host):
        hosts.append(listen_host)
    return hosts


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gwsreplay")])
    now = dt.datetime.now(dt.timezone.utc)
    public = key.public_key()
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))


def _server_certificate(key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, ca_key,
                        hosts: list[str]) -> x509.Certificate:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.timezone.utc)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
