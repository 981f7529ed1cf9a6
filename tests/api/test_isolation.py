"""In-process API tests run inside a transaction rolled back at their end (tests/conftest.py)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.db import get_engine
from shared.models import Job, User


def _committed_jobs() -> int:
    """Jobs visible to a connection of its own, i.e. really committed."""
    with get_engine().connect() as connection:
        return connection.scalar(select(func.count()).select_from(Job))


def test_what_a_client_test_commits_stays_inside_its_transaction(client, headers):
    response = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "call mom"}},
                           headers=headers)
    assert response.status_code == 202
    assert client.get(f"/v1/jobs/{response.json['id']}", headers=headers).status_code == 200
    assert _committed_jobs() == 0


def test_and_nothing_of_it_is_left_for_the_next_test(client):
    # Runs after the test above (file order): its user and job were rolled back.
    assert _committed_jobs() == 0
    with get_engine().connect() as connection:
        assert connection.scalar(select(func.count()).select_from(User).where(User.role != "system")) == 0


@pytest.mark.truncate
def test_a_test_marked_truncate_commits_for_real(client, headers):
    response = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "call mom"}},
                           headers=headers)
    assert response.status_code == 202
    assert _committed_jobs() == 1
