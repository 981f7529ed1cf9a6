"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, over STARTTLS or TLS.

Its certificate is made at start for 127.0.0.1 and written beside a CA bundle (certifi's and
this one) that a process trusts through SSL_CERT_FILE, so the client's certificate check is
the real one, not switched off.
"""
from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from email import message_from_bytes, policy
from pathlib import Path

import certifi
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed certificate for 127.0.0.1: (cert, key, bundle of certifi's CAs plus it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path, bundle = directory / "smtp.crt", directory / "smtp.key", directory / "ca-bundle.pem"
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + cert_pem)
    return cert_path, key_path, bundle


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class FakeSMTP:
    """mode: "starttls" (STARTTLS required), "tls" (implicit TLS) or "plain" (no TLS offered)."""

    def __init__(self, directory: Path, mode: str = "starttls"):
        self.cert, self.key, self.bundle = write_certificate(directory)
        self.inbox = _Inbox()
        self.port = _free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        options = {"starttls": dict(tls_context=context, require_starttls=True), "tls": dict(ssl_context=context),
                   "plain": {}}[mode]
        self.scheme = "smtps" if mode == "tls" else "smtp"
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list:
        return self.inbox.messages

    def start(self) -> "FakeSMTP":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
