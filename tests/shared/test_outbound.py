"""Outbound calls to users' URLs connect to the address that was checked, never a second lookup's."""
from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.webhooks import CheckedUrl, pinned_session

HOST = "hooks.rebinding.invalid"  # resolves nowhere: only the pinned address can reach the server


@pytest.fixture
def tls_server(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.headers.get("Host"))
            status = 302 if self.path == "/redirect" else 200
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(tmp_path / "cert.pem"), seen
    server.shutdown()
    server.server_close()


def test_the_call_goes_to_the_checked_address_with_the_host_name_verified(tls_server):
    port, ca, seen = tls_server
    checked = CheckedUrl(url=f"https://{HOST}:{port}/hook", host=HOST, port=port, address="127.0.0.1")

    with pinned_session(checked) as http:
        response = http.post(checked.url, data=b"{}", verify=ca, timeout=5)

    assert response.status_code == 200 and seen == [f"{HOST}:{port}"]
    with pinned_session(checked) as http, pytest.raises(requests.exceptions.SSLError):
        http.post(checked.url, data=b"{}", timeout=5)  # the system's CAs do not vouch for it


def test_redirects_are_not_followed(tls_server):
    port, ca, seen = tls_server
    checked = CheckedUrl(url=f"https://{HOST}:{port}/redirect", host=HOST, port=port, address="127.0.0.1")

    with pinned_session(checked) as http:
        response = http.post(checked.url, data=b"{}", verify=ca, timeout=5)  # even when asked to follow

    assert response.status_code == 302 and response.headers["Location"].startswith("http://169.254.169.254")
    assert len(seen) == 1
