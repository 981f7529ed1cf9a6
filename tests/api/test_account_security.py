"""Accounts people can secure, and accounts that are gone: as an attacker and a user call them."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from shared import db
from tests.support import auth_headers, create_user


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
