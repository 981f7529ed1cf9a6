"""Account mail through a real SMTP server on loopback (aiosmtpd), sent by a real worker.

The reset link goes out over STARTTLS (required) with a certificate the worker really checks
(SSL_CERT_FILE holds the fake's CA), and is built from PUBLIC_BASE_URL whatever Host the
request named.
"""
from __future__ import annotations

import re
import smtplib

import pytest

from shared import account_mail
from shared.settings import get_settings
from tests.fakes.smtp_server import FakeSMTP
from tests.support import PASSWORD, WorkerProcess, create_user, environment, wait_until

pytestmark = pytest.mark.worker

PUBLIC = "https://assistant.example"


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    server = FakeSMTP(tmp_path_factory.mktemp("smtp")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_worker(smtp, worker):
    """A worker that mails through the fake (in place of the suite's, which has no SMTP_URL)."""
    env = {"SMTP_URL": smtp.url, "MAIL_FROM": "Assistant <no-reply@assistant.example>", "PUBLIC_BASE_URL": PUBLIC,
           "SSL_CERT_FILE": str(smtp.bundle)}
    with environment(env), worker.paused():
        process = WorkerProcess()
        process.start()
        yield process
        process.stop()


def _mail_to(smtp, address: str, subject: str):
    return [m for m in smtp.messages if m["To"] == address and m["Subject"] == subject]


def test_a_reset_link_is_mailed_over_starttls_and_sets_a_new_password(smtp, mail_worker, app):
    client = app.test_client()
    user = create_user("mailme@example.com")
    assert client.get("/v1/auth/password-reset").json == {"available": True}

    # The Host header is the attacker's to choose: the link must not follow it.
    for address in ("nobody-here@example.com", user.email):
        answer = client.post("/v1/auth/password-reset", json={"email": address}, headers={"Host": "evil.example"})
        assert answer.status_code == 202
    wait_until(lambda: _mail_to(smtp, user.email, "Reset your password"), message="the reset mail")
    [mail] = _mail_to(smtp, user.email, "Reset your password")
    assert mail["From"] == "Assistant <no-reply@assistant.example>"
    [token] = re.findall(re.escape(f"{PUBLIC}/app/reset#token=") + r"([A-Za-z0-9_-]+)", mail.get_content())
    assert len(token) >= 43  # 32 random bytes
    assert not [m for m in smtp.messages if m["To"] == "nobody-here@example.com"]

    confirmed = client.post("/v1/auth/password-reset/confirm", json={"token": token, "new_password": "brand-new-pw"})
    assert confirmed.status_code == 204
    login = client.post("/v1/auth/login", json={"email": user.email, "password": "brand-new-pw"})
    assert login.status_code == 200

    changed = client.post("/v1/me/password", json={"current_password": "brand-new-pw", "new_password": PASSWORD},
                          headers={"Authorization": f"Bearer {login.json['access_token']}"})
    assert changed.status_code == 204
    wait_until(lambda: _mail_to(smtp, user.email, "Your password was changed"), message="the notice")


@pytest.mark.parametrize("mode", ["tls", "plain"])
def test_smtps_is_tls_from_the_first_byte_and_a_server_without_starttls_is_refused(tmp_path, mode):
    server = FakeSMTP(tmp_path, mode=mode).start()
    try:
        with environment({"SMTP_URL": server.url, "SSL_CERT_FILE": str(server.bundle)}):
            settings = get_settings()
            message = account_mail.changed_message(to="someone@example.com", settings=settings)
            if mode == "tls":
                account_mail.send(message, settings)
                assert [m["Subject"] for m in server.messages] == ["Your password was changed"]
            else:  # a link never crosses the network in clear
                with pytest.raises(smtplib.SMTPNotSupportedError):
                    account_mail.send(message, settings)
                assert server.messages == []
    finally:
        server.stop()
