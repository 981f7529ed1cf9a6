"""Account mail (a password-reset link, "your password was changed") sent through SMTP.

SMTP_URL says how: `smtp://user:password@host:587` upgrades with STARTTLS and refuses a
server that does not offer it (a reset link never crosses the network in clear);
`smtps://user:password@host:465` is TLS from the first byte. Messages are built with the
standard library's email package. Sent by a worker (workers.account_mail), never by a
request: the api answers a reset request the same whether or not the address has an account.
"""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

from shared.accounts import RESET_MINUTES
from shared.settings import Settings

SMTP_TIMEOUT = 20


def reset_message(*, to: str, link: str, settings: Settings) -> EmailMessage:
    return _message(settings, to, "Reset your password", (
        "Someone (we hope you) asked to reset the password of your Assistant account.\n\n"
        f"Open this link within {RESET_MINUTES} minutes to choose a new password:\n\n{link}\n\n"
        "It works once. If you did not ask, ignore this mail: your password stays as it is.\n"))


def changed_message(*, to: str, settings: Settings) -> EmailMessage:
    return _message(settings, to, "Your password was changed", (
        "The password of your Assistant account was just changed, and every other sign-in ended.\n\n"
        f"If this was not you, reset your password now at {settings.public_base_url.rstrip('/')}/app/ "
        "(\"Forgot password?\").\n"))


def _message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=urlsplit(settings.public_base_url).hostname or "localhost")
    message.set_content(body)
    return message


def send(message: EmailMessage, settings: Settings) -> None:
    """Send through SMTP_URL; raises OSError or smtplib.SMTPException when it did not go."""
    parts = urlsplit(settings.smtp_url)
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        connection = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=SMTP_TIMEOUT, context=context)
    else:
        connection = smtplib.SMTP(parts.hostname, parts.port or 587, timeout=SMTP_TIMEOUT)
    with connection as smtp:
        if parts.scheme != "smtps":
            smtp.starttls(context=context)  # SMTPNotSupportedError when the server offers none
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)
