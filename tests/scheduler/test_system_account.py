"""The system account that owns beat's nightly jobs cannot be squatted.

Before, it was made on first use under an email anyone could register first; a squatter
then owned beat's platform jobs without being an admin, and backups, retention and their
verification failed every night with "Unknown job type".
"""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from shared import db, migrate
from shared.celery_app import app as celery_app
from shared.models import Job, User, utcnow
from shared.passwords import hash_password
from shared.schedules import SYSTEM_EMAIL, system_user
from tests.support import PASSWORD, wait_until


def test_registering_the_address_is_refused_and_the_account_exists_already(client):
    response = client.post("/v1/auth/register", json={"email": SYSTEM_EMAIL, "password": PASSWORD})

    assert response.status_code == 422 and "email" in response.json["errors"]


@pytest.mark.worker
def test_a_squatter_from_before_the_upgrade_is_disabled_and_the_nightly_jobs_run(client, worker):
    migrate.downgrade("0006")
    try:
        squatter_id = uuid.uuid4()
        with db.get_engine().begin() as connection:
            # What POST /v1/auth/register made of the address before this release.
            connection.execute(
                text("INSERT INTO users (id, email, password_hash, role, timezone, digest_time, created_at, updated_at)"
                     " VALUES (:id, :email, :hash, 'user', 'UTC', '07:00', :now, :now)"),
                {"id": squatter_id, "email": SYSTEM_EMAIL, "hash": hash_password(PASSWORD), "now": utcnow()},
            )
    finally:
        migrate.upgrade()

    assert client.post("/v1/auth/login", json={"email": SYSTEM_EMAIL, "password": PASSWORD}).status_code == 401
    with db.session_scope() as session:
        squatter = session.get(User, squatter_id)
        assert squatter.disabled_at is not None and squatter.email != SYSTEM_EMAIL and squatter.role == "user"
        owner = system_user(session)
        assert owner.role == "system" and owner.email == SYSTEM_EMAIL and owner.id != squatter_id

    # What beat sends at 03:30 UTC, taken by a real worker.
    celery_app.send_task("scheduler.platform_job", args=("ops.retention",), queue="maintenance")

    def finished_retention():
        with db.session_scope() as session:
            job = session.scalar(select(Job).where(Job.type == "ops.retention"))
            return job if job is not None and job.status in ("succeeded", "failed") else None

    job = wait_until(finished_retention, timeout=60, message="the nightly retention job")
    assert job.status == "succeeded", (job.error_code, job.error_message)
    assert job.user_id == owner.id


def test_the_system_account_is_made_again_if_it_is_gone_even_with_its_address_taken():
    with db.session_scope() as session:
        session.add(User(email=SYSTEM_EMAIL, password_hash=hash_password(PASSWORD), role="user"))
    with db.session_scope() as session:
        owner = system_user(session)
        assert owner.role == "system" and owner.is_admin and owner.email != SYSTEM_EMAIL
    with db.session_scope() as session:
        assert system_user(session).id == owner.id
