"""Structured logs: request ids from the api into the worker, and no secret in any line."""
from __future__ import annotations

import json
import logging
import uuid

import pytest
import requests

from shared.logging import REDACTED, formatter, new_request_id, redact_text, redact_value
from tests.support import PASSWORD, ServerProcess, create_user, wait_for_job, wait_until


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return lines


# -- redaction ------------------------------------------------------------------------------


def test_secret_keys_are_redacted_at_any_depth():
    event = {
        "event": "login",
        "password": "hunter2hunter2",
        "headers": {"Authorization": "Bearer abc.def.ghi", "Accept": "application/json"},
        "body": {"refresh_token": "r-123", "client_secret": "cs-9", "code": "4/0Ab", "email": "a@b.c"},
        "pairs": [("Cookie", "session=xyz"), ("Host", "api")],
    }
    redacted = redact_value(event)
    text = json.dumps(redacted)
    for secret in ("hunter2hunter2", "abc.def.ghi", "r-123", "cs-9", "4/0Ab", "session=xyz"):
        assert secret not in text
    assert redacted["headers"]["Accept"] == "application/json"
    assert redacted["body"]["email"] == "a@b.c"
    assert redacted["pairs"][1] == ("Host", "api")


@pytest.mark.parametrize(
    "text, secret",
    [
        ("calling with Authorization: Bearer s3cr3t-t0ken", "s3cr3t-t0ken"),
        ("GET /callback?state=x&code=4/0AbCdEf&scope=mail", "4/0AbCdEf"),
        ("POST /token refresh_token=1//0gXyZ&client_secret=GOCSPX-abc", "1//0gXyZ"),
        ("POST /token refresh_token=1//0gXyZ&client_secret=GOCSPX-abc", "GOCSPX-abc"),
        ('body {"password": "pw with spaces", "email": "x@y.z"}', "pw with spaces"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl leaked", "eyJzdWIiOiIxMjM0In0"),
        ("connecting to redis://:p4ssw0rd@redis:6379/0", "p4ssw0rd"),
        ("connecting to postgresql://app:p4ssw0rd@db/assistant", "p4ssw0rd"),
    ],
)
def test_secrets_in_free_text_are_redacted(text, secret):
    cleaned = redact_text(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_the_formatter_redacts_stdlib_records_and_their_exceptions():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token refresh failed: %s", ("Bearer abcdef123",), None)
    try:
        raise ValueError("password=hunter2 rejected")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = formatter("json").format(record)
    data = json.loads(line)
    assert "abcdef123" not in line and "hunter2" not in line
    assert data["level"] == "error" and "ValueError" in data["exception"]


def test_request_ids_are_kept_only_when_sane():
    assert new_request_id("abc-123_DEF.4") == "abc-123_DEF.4"
    for bad in (None, "", "has space", "x" * 200, "quote\"d", "new\nline"):
        generated = new_request_id(bad)
        assert generated != bad and len(generated) == 32


# -- through the api ------------------------------------------------------------------------


def test_the_request_id_is_echoed_or_made(client):
    response = client.get("/health", headers={"X-Request-ID": "from-the-proxy-42"})
    assert response.headers["X-Request-ID"] == "from-the-proxy-42"
    made = client.get("/health").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/health").headers["X-Request-ID"]
    # Refused requests carry one too.
    assert client.get("/no/such/path").headers.get("X-Request-ID")


@pytest.mark.worker
def test_a_jobs_worker_log_lines_carry_the_submitting_requests_id(worker, client, user, headers):
    request_id = f"req-{uuid.uuid4().hex}"
    response = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "buy milk"}},
                           headers={**headers, "X-Request-ID": request_id})
    assert response.status_code == 202, response.json
    job_id = response.json["id"]
    assert wait_for_job(client, job_id, headers)["status"] == "succeeded"

    def lines_of_the_job():
        return [line for line in json_lines(worker.log_path.read_text(errors="replace"))
                if line.get("job_id") == job_id]

    lines = wait_until(lambda: len(lines_of_the_job()) >= 2 and lines_of_the_job(),
                       message="the worker's log lines of the job")
    assert {line["event"] for line in lines} >= {"task started", "task finished"}
    for line in lines:
        assert line["request_id"] == request_id
        assert line["user_id"] == str(user.id)
        assert line["task"] == "jobs.tasks.quick_add"


def test_no_secret_reaches_the_servers_log_during_sign_in_and_refresh(tmp_path):
    user = create_user(f"logs-{uuid.uuid4().hex[:8]}@example.com")
    server = ServerProcess(env={"GUNICORN_ACCESSLOG": "-", "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}).start()
    try:
        http = requests.Session()
        login = http.post(f"{server.url}/v1/auth/login", json={"email": user.email, "password": PASSWORD},
                          headers={"X-Request-ID": "login-req"}, timeout=10)
        assert login.status_code == 200, login.text
        pair = login.json()
        refreshed = http.post(f"{server.url}/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]},
                              timeout=10).json()
        me = http.get(f"{server.url}/v1/me", headers={"Authorization": f"Bearer {refreshed['access_token']}"},
                      timeout=10)
        assert me.status_code == 200
        # Secrets in a URL, as an OAuth callback or a careless client would send them.
        http.get(f"{server.url}/health?access_token={pair['access_token']}&code=oauth-code-123",
                 headers={"X-Request-ID": "leaky-url"}, timeout=10)
        lines = wait_until(
            lambda: (text := server.log_path.read_text(errors="replace")) and "leaky-url" in text and text,
            message="the access log lines",
        )
    finally:
        server.stop()
    for secret in (PASSWORD, pair["access_token"], pair["refresh_token"], refreshed["access_token"],
                   refreshed["refresh_token"], "oauth-code-123"):
        assert secret not in lines
    records = json_lines(lines)
    login_line = next(r for r in records if r.get("http", {}).get("request_id") == "login-req")
    assert login_line["http"]["path"] == "/v1/auth/login" and login_line["http"]["status"] == 200
    leaky = next(r for r in records if r.get("http", {}).get("request_id") == "leaky-url")
    assert leaky["http"]["path"].startswith("/health?access_token=" + REDACTED)


def test_console_format_is_for_people_and_still_redacted():
    from shared.logging import bind_context, clear_context

    bind_context(request_id="req-console")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent Bearer abcdef123456", (), None)
        line = formatter("console").format(record)
    finally:
        clear_context()
    assert not line.startswith("{")
    assert "req-console" in line and "abcdef123456" not in line


def test_database_error_parameters_are_redacted_like_any_log_line(user):
    """A failed statement's parameters reach the log through the exception's own text."""
    from sqlalchemy import insert, select, text
    from sqlalchemy.exc import DataError, IntegrityError

    from shared import db
    from shared.models import RefreshToken, User

    secret = "leaked-" + uuid.uuid4().hex  # never written out in this file, so no traceback line shows it
    with pytest.raises(IntegrityError) as taken, db.session_scope() as session:
        # A second account with a taken email: the insert fails with every column as a parameter.
        session.execute(insert(User).values(id=uuid.uuid4(), email=user.email, password_hash=secret,
                                            role="user", timezone="UTC", digest_time="07:00"))
    with pytest.raises(DataError) as lookup, db.session_scope() as session:
        # A bound comparison's parameter is named token_hash_1.
        session.execute(select(RefreshToken.id).where(RefreshToken.token_hash == secret, text("1 / 0 = 1")))

    for exc in (taken.value, lookup.value):
        record = logging.LogRecord("api.errors", logging.ERROR, __file__, 1, "dependency failed: %s", (exc,), None)
        record.exc_info = (type(exc), exc, exc.__traceback__)
        line = formatter("json").format(record)
        assert secret not in line and secret not in str(exc)
        assert REDACTED in json.loads(line)["exception"] and REDACTED in json.loads(line)["event"]
    # Parameters that are no secret stay readable, for whoever debugs the failure.
    assert f"'email': '{user.email}'" in str(taken.value)
