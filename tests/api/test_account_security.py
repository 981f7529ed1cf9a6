"""Accounts people can secure, and accounts that are gone: as an attacker and a user call them."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from shared import db
from tests.support import PASSWORD, auth_headers, create_user


def _someone_waits_on_a_lock(connection) -> bool:
    connection.execute(text("SELECT pg_stat_clear_snapshot()"))  # else one snapshot per transaction
    return bool(connection.execute(text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )).scalar())


def _delete_while_the_request_runs(client, user, call):
    """Delete the account in a transaction that commits only once the request waits on it:
    the request was authenticated while the user existed, and its write finds the user gone."""
    answer = {}
    with db.get_engine().connect() as connection:
        connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": user.id})
        thread = threading.Thread(target=lambda: answer.setdefault("response", call()))
        thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _someone_waits_on_a_lock(connection):
            time.sleep(0.05)
        connection.commit()
        thread.join(30)
    return answer["response"]


@pytest.mark.truncate  # two connections: the request's and the deleting one
def test_a_deleted_accounts_token_is_401_even_mid_request(client):
    """Found by schemathesis: an account deleted while its request ran was a 500 (a foreign-key violation)."""
    user = create_user("vanishing@example.com")
    headers = auth_headers(user)
    response = _delete_while_the_request_runs(client, user, lambda: client.post(
        "/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "call mom"}}, headers=headers))
    assert response.status_code == 401 and response.json["code"] == "invalid_token", response.get_data(as_text=True)
    again = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "x"}}, headers=headers)
    assert again.status_code == 401 and again.json["code"] == "invalid_token"


def _login(client, email: str, password: str = PASSWORD) -> dict:
    response = client.post("/v1/auth/login", json={"email": email, "password": password})
    return response.json if response.status_code == 200 else {"status": response.status_code}


def _bearer(pair: dict) -> dict:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def test_changing_the_password_ends_every_other_sign_in_and_keeps_this_one(client):
    user = create_user("changer@example.com")
    here, elsewhere = _login(client, user.email), _login(client, user.email)

    wrong = client.post("/v1/me/password", json={"current_password": "not-it-at-all", "new_password": "n3w-passw0rd"},
                        headers=_bearer(here))
    assert wrong.status_code == 403 and wrong.json["code"] == "wrong_password"
    assert client.get("/v1/me", headers=_bearer(elsewhere)).status_code == 200  # a wrong guess changes nothing

    changed = client.post("/v1/me/password", json={"current_password": PASSWORD, "new_password": "n3w-passw0rd"},
                          headers=_bearer(here))
    assert changed.status_code == 204, changed.json
    assert client.get("/v1/me", headers=_bearer(elsewhere)).status_code == 401
    assert client.post("/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]}).status_code == 401
    assert client.get("/v1/me", headers=_bearer(here)).status_code == 200
    assert client.post("/v1/auth/refresh", json={"refresh_token": here["refresh_token"]}).status_code == 200
    assert _login(client, user.email) == {"status": 401}
    assert "access_token" in _login(client, user.email, "n3w-passw0rd")
    from shared.models import AuditRecord

    with db.session_scope() as session:  # the change is in the audit log, the wrong guess is not
        actions = session.scalars(select(AuditRecord.action).where(AuditRecord.subject_id == user.id)).all()
    assert actions.count("auth.password_change") == 1


def test_a_reset_request_answers_the_same_whether_or_not_the_account_exists(client):
    create_user("known@example.com")
    known = client.post("/v1/auth/password-reset", json={"email": "Known@example.com"})
    unknown = client.post("/v1/auth/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_data() == unknown.get_data()
    assert client.get("/v1/auth/password-reset").json == {"available": False}  # no SMTP_URL in the suite


def test_a_reset_link_works_once_within_30_minutes_and_a_newer_one_voids_it(client, settings):
    from datetime import timedelta

    from shared.accounts import issue_reset
    from shared.models import PasswordReset, utcnow

    user = create_user("forgetful@example.com")
    signed_in = _login(client, user.email)
    with db.session_scope() as session:  # what the mail worker does with the address
        _, older = issue_reset(session=session, email=user.email, settings=settings)
    with db.session_scope() as session:
        _, link = issue_reset(session=session, email=user.email, settings=settings)
    assert link.startswith(f"{settings.public_base_url}/app/reset#token=")
    token = link.split("#token=")[1]

    def confirm(value, password="fresh-passw0rd"):
        return client.post("/v1/auth/password-reset/confirm", json={"token": value, "new_password": password})

    assert confirm(older.split("#token=")[1]).json["code"] == "invalid_reset_token"  # voided by the newer
    assert confirm(token).status_code == 204
    assert confirm(token, "another-passw0rd").status_code == 400  # once
    assert client.get("/v1/me", headers=_bearer(signed_in)).status_code == 401  # every sign-in ended
    assert client.post("/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}).status_code == 401
    assert "access_token" in _login(client, user.email, "fresh-passw0rd")

    with db.session_scope() as session:
        _, late = issue_reset(session=session, email=user.email, settings=settings)
        session.flush()
        for row in session.scalars(select(PasswordReset).where(PasswordReset.used_at.is_(None))):
            row.expires_at = utcnow() - timedelta(seconds=1)
    assert confirm(late.split("#token=")[1]).status_code == 400
    with db.session_scope() as session:  # only the digest is kept
        assert token not in {row.token_hash for row in session.scalars(select(PasswordReset))}


def test_reset_requests_are_limited_per_address(settings):
    from api import create_app

    limited = create_app(settings.replace(rate_limit_enabled=True, auth_rate_limit_per_minute=1000,
                                          rate_limit_per_minute=1000)).test_client()
    address = f"target-{time.time_ns()}@example.com"
    answers = [limited.post("/v1/auth/password-reset", json={"email": address},
                            environ_base={"REMOTE_ADDR": f"10.9.{n}.1"}).status_code for n in range(6)]
    assert answers == [202] * 5 + [429]  # from six IPs: the address's own limit
