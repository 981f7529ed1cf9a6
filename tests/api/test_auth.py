"""Registration, login, access tokens, refresh-token rotation, logout and the admin command."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from api.security import ALGORITHM, ISSUER
from shared.cli import main as cli
from shared.db import get_engine, session_scope
from shared.models import Job, RefreshToken, User, utcnow
from tests.support import PASSWORD

NEW_PASSWORD = "a brand new passphrase"


def new_email(name: str = "new") -> str:
    """An address no other test (or concurrent run on the same database) uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def login(client, email: str, password: str = PASSWORD):
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def tokens_of(client, user) -> dict:
    """A fresh login of `user`: a new refresh-token family."""
    response = login(client, user.email)
    assert response.status_code == 200, response.json
    return response.json


def refresh(client, refresh_token: str):
    return client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})


def me(client, access_token: str):
    return client.get("/v1/me", headers={"Authorization": f"Bearer {access_token}"})


def access_claims(user, **overrides) -> dict:
    now = datetime.now(timezone.utc)
    claims = {"sub": str(user.id), "role": user.role, "type": "access", "iss": ISSUER,
              "iat": now, "exp": now + timedelta(minutes=15)}
    return {**claims, **overrides}


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assert_unauthorized(response, code: str | None = None):
    assert response.status_code == 401, response.json
    assert response.is_json
    assert "WWW-Authenticate" in response.headers
    if code:
        assert response.json["code"] == code


# -- register ---------------------------------------------------------------------------


def test_register_creates_a_user_without_exposing_the_password(client):
    email = new_email("New.Person")
    response = client.post("/v1/auth/register", json={
        "email": email.upper(), "password": "long enough", "timezone": "Europe/Berlin",
    })

    assert response.status_code == 201, response.json
    body = response.json
    assert body["email"] == email.lower()
    assert body["timezone"] == "Europe/Berlin"
    assert body["role"] == "user"
    assert uuid.UUID(body["id"])
    assert not {"password", "password_hash"} & body.keys()
    assert "long enough" not in response.get_data(as_text=True)


def test_register_defaults_the_timezone_to_utc(client):
    response = client.post("/v1/auth/register", json={"email": new_email(), "password": "long enough"})

    assert response.status_code == 201, response.json
    assert response.json["timezone"] == "UTC"


def test_register_refuses_a_taken_email_whatever_its_case(client, user):
    response = client.post("/v1/auth/register", json={"email": user.email.upper(), "password": "long enough"})

    assert response.status_code == 409
    assert response.json["code"] == "email_taken"


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "not-an-email", "password": "long enough"}, "email"),
    ({"email": "short@example.com", "password": "short"}, "password"),
    ({"email": "tz@example.com", "password": "long enough", "timezone": "Mars/Olympus"}, "timezone"),
    ({"email": "role@example.com", "password": "long enough", "role": "admin"}, "role"),
    ({"password": "long enough"}, "email"),
])
def test_register_rejects_invalid_fields(client, body, field):
    response = client.post("/v1/auth/register", json=body)

    assert response.status_code == 422
    assert response.json["code"] == "validation_error"
    assert list(response.json["errors"]) == [field]
    assert response.json["errors"][field]


# -- login ------------------------------------------------------------------------------


def test_login_returns_a_token_pair(client, user, settings):
    response = login(client, user.email.upper())

    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.jwt_access_minutes * 60
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    assert me(client, body["access_token"]).json["id"] == str(user.id)


def test_wrong_password_and_unknown_email_get_the_same_answer(client, user):
    wrong_password = login(client, user.email, "not the password")
    unknown_email = login(client, "nobody@example.com")

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json == unknown_email.json
    assert wrong_password.json["code"] == "invalid_credentials"


# -- access tokens ----------------------------------------------------------------------


def test_a_missing_token_is_refused_with_a_challenge(client):
    response = client.get("/v1/me")

    assert_unauthorized(response, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_under_another_scheme_is_refused(client, headers):
    token = headers["Authorization"].removeprefix("Bearer ")

    assert_unauthorized(client.get("/v1/me", headers={"Authorization": f"Basic {token}"}), "unauthorized")


def test_an_expired_token_is_refused_as_expired(client, user, settings):
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    token = jwt.encode(access_claims(user, iat=past, exp=past + timedelta(minutes=15)),
                       settings.jwt_secret, algorithm=ALGORITHM)

    assert_unauthorized(me(client, token), "token_expired")


def test_a_token_with_a_changed_payload_is_refused(client, headers, other_user):
    header, payload, signature = headers["Authorization"].removeprefix("Bearer ").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = f"{header}.{b64({**claims, 'sub': str(other_user.id)})}.{signature}"

    assert_unauthorized(me(client, forged), "invalid_token")


def test_a_token_with_a_changed_signature_is_refused(client, headers):
    header, payload, signature = headers["Authorization"].removeprefix("Bearer ").split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]

    assert_unauthorized(me(client, f"{header}.{payload}.{flipped}"), "invalid_token")


def test_an_unsigned_alg_none_token_is_refused(client, user):
    claims = access_claims(user)
    claims = {**claims, "iat": int(claims["iat"].timestamp()), "exp": int(claims["exp"].timestamp())}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."

    assert_unauthorized(me(client, unsigned), "invalid_token")


def test_a_token_signed_with_another_secret_is_refused(client, user):
    token = jwt.encode(access_claims(user), "some-other-secret-0123456789abcdef", algorithm=ALGORITHM)

    assert_unauthorized(me(client, token), "invalid_token")


def test_a_signed_token_that_is_not_an_access_token_is_refused(client, user, settings):
    token = jwt.encode(access_claims(user, type="refresh"), settings.jwt_secret, algorithm=ALGORITHM)

    assert_unauthorized(me(client, token), "invalid_token")


def test_a_refresh_token_is_not_a_bearer_token(client, user):
    tokens = tokens_of(client, user)

    assert_unauthorized(me(client, tokens["refresh_token"]), "invalid_token")


def test_the_token_of_a_deleted_user_is_refused(client, user, headers):
    with session_scope() as session:
        session.delete(session.get(User, user.id))

    assert_unauthorized(client.get("/v1/me", headers=headers), "invalid_token")


# -- refresh and logout -----------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(client, user):
    first = tokens_of(client, user)

    response = refresh(client, first["refresh_token"])

    assert response.status_code == 200, response.json
    second = response.json
    assert second["token_type"] == "Bearer"
    assert second["refresh_token"] != first["refresh_token"]
    assert me(client, second["access_token"]).status_code == 200
    assert refresh(client, first["refresh_token"]).status_code == 401
    assert refresh(client, "never-issued").json["code"] == "invalid_refresh_token"


def test_reusing_a_rotated_token_revokes_its_family_only(client, user):
    stolen = tokens_of(client, user)["refresh_token"]
    other_device = tokens_of(client, user)["refresh_token"]
    newest = refresh(client, stolen).json["refresh_token"]

    reuse = refresh(client, stolen)

    assert reuse.status_code == 401
    assert reuse.json["code"] == "refresh_token_reused"
    assert refresh(client, newest).status_code == 401
    assert refresh(client, other_device).status_code == 200


def test_an_expired_refresh_token_is_refused(client, user):
    token = tokens_of(client, user)["refresh_token"]
    with session_scope() as session:
        session.execute(update(RefreshToken).where(RefreshToken.user_id == user.id)
                        .values(expires_at=utcnow() - timedelta(seconds=1)))

    response = refresh(client, token)

    assert response.status_code == 401
    assert response.json["code"] == "invalid_refresh_token"


def test_logout_revokes_the_whole_family(client, user):
    first = tokens_of(client, user)["refresh_token"]
    second = refresh(client, first).json["refresh_token"]
    other_device = tokens_of(client, user)["refresh_token"]

    response = client.post("/v1/auth/logout", json={"refresh_token": second})

    assert response.status_code == 204
    assert refresh(client, second).status_code == 401
    assert refresh(client, other_device).status_code == 200


def test_logout_of_an_unknown_token_succeeds(client):
    assert client.post("/v1/auth/logout", json={"refresh_token": "never-issued"}).status_code == 204
    assert client.post("/v1/auth/logout", json={}).status_code == 204


@pytest.mark.truncate  # reads the table on a connection of its own
def test_refresh_tokens_are_stored_hashed(client, user):
    token = tokens_of(client, user)["refresh_token"]

    table = RefreshToken.__table__
    with get_engine().connect() as connection:
        rows = connection.execute(select(table).where(table.c.user_id == user.id)).mappings().all()

    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0].values())
    assert len(rows[0]["token_hash"]) == 64


# -- the operator's admin command --------------------------------------------------------


def run_create_admin(email: str, password: str = NEW_PASSWORD):
    result = CliRunner().invoke(cli, ["users", "create-admin", email, "--password", password])
    assert result.exit_code == 0, result.output
    return result


def role_of(email: str) -> str | None:
    with session_scope() as session:
        return session.scalar(select(User.role).where(User.email == email))


def test_create_admin_makes_an_admin_who_can_log_in(client):
    email = new_email("boss")

    run_create_admin(email.upper())

    assert role_of(email) == "admin"
    assert login(client, email, NEW_PASSWORD).status_code == 200


def test_create_admin_promotes_an_existing_user(client, user):
    result = run_create_admin(user.email)

    assert "promoted" in result.output
    assert role_of(user.email) == "admin"
    with session_scope() as session:
        assert session.scalar(select(User.id).where(User.email == user.email)) == user.id
    assert login(client, user.email, NEW_PASSWORD).status_code == 200


def test_create_admin_refuses_a_short_password():
    email = new_email("short")

    result = CliRunner().invoke(cli, ["users", "create-admin", email, "--password", "short"])

    assert result.exit_code != 0
    assert role_of(email) is None


def test_reserved_addresses_cannot_be_registered(client):
    for email in ("system@assistant.invalid", "System@Assistant.INVALID", "ops@beat.assistant.invalid"):
        response = client.post("/v1/auth/register", json={"email": email, "password": "long enough"})

        assert response.status_code == 422, email
        assert "reserved" in response.json["errors"]["email"][0]


# -- tokens end when their login does ---------------------------------------------------


def test_token_answers_are_never_cached(client, user):
    first = login(client, user.email)
    rotated = refresh(client, first.json["refresh_token"])
    for response in (first, rotated, login(client, user.email, "wrong password")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"


@pytest.fixture
def second_api(settings):
    """Another api process's app: what it knows of a logout it learns through Redis or the database."""
    from api import create_app

    return create_app(settings).test_client()


def test_logout_on_one_device_ends_its_access_token_at_once_and_leaves_the_other(client, second_api, user):
    phone, laptop = tokens_of(client, user), tokens_of(client, user)
    assert me(second_api, phone["access_token"]).status_code == 200

    assert client.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"]}).status_code == 204

    assert_unauthorized(me(second_api, phone["access_token"]), "token_revoked")
    assert_unauthorized(me(client, phone["access_token"]), "token_revoked")
    assert me(second_api, laptop["access_token"]).status_code == 200
    assert refresh(second_api, laptop["refresh_token"]).status_code == 200


def test_reuse_of_a_rotated_refresh_token_ends_that_family_s_access_tokens(client, second_api, user):
    stolen = tokens_of(client, user)
    other_device = tokens_of(client, user)
    current = refresh(client, stolen["refresh_token"]).json

    assert refresh(second_api, stolen["refresh_token"]).json["code"] == "refresh_token_reused"

    assert_unauthorized(me(client, current["access_token"]), "token_revoked")
    assert me(client, other_device["access_token"]).status_code == 200


def test_logout_everywhere_ends_every_device(client, second_api, user):
    phone, laptop = tokens_of(client, user), tokens_of(client, user)

    response = client.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"], "everywhere": True})

    assert response.status_code == 204
    for device in (phone, laptop):
        assert_unauthorized(me(second_api, device["access_token"]), "token_revoked")
        assert refresh(second_api, device["refresh_token"]).status_code == 401
    assert me(client, tokens_of(client, user)["access_token"]).status_code == 200  # a new sign-in works


def test_a_revocation_outlives_a_redis_that_forgot_it(client, user):
    from shared import revocation
    from shared.redis_clients import cache_redis

    phone, laptop = tokens_of(client, user), tokens_of(client, user)
    client.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"]})
    family = jwt.decode(phone["access_token"], options={"verify_signature": False})["fam"]
    # What a Redis restarted without persistence has lost.
    assert cache_redis().delete(revocation.family_key(family), revocation.version_key(user.id)) >= 1

    assert_unauthorized(me(client, phone["access_token"]), "token_revoked")
    assert cache_redis().exists(revocation.family_key(family))  # reloaded from the database
    assert me(client, laptop["access_token"]).status_code == 200


def test_without_redis_the_database_answers(client, user, monkeypatch):
    from shared import redis_clients
    from shared.settings import get_settings
    from tests.support import free_port

    phone, laptop = tokens_of(client, user), tokens_of(client, user)
    client.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"]})
    monkeypatch.setenv("CACHE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    get_settings.cache_clear()
    redis_clients.reset()
    try:
        assert_unauthorized(me(client, phone["access_token"]), "token_revoked")
        assert me(client, laptop["access_token"]).status_code == 200
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        redis_clients.reset()


def test_an_access_token_from_before_families_is_refused_until_refreshed(client, user, settings):
    token = jwt.encode(access_claims(user), settings.jwt_secret, algorithm=ALGORITHM)
    assert_unauthorized(me(client, token), "token_revoked")


def test_create_admin_reads_the_password_from_stdin(client):
    email = new_email("stdin")

    result = CliRunner().invoke(cli, ["users", "create-admin", email, "--password-stdin"], input=NEW_PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output
    assert role_of(email) == "admin" and login(client, email, NEW_PASSWORD).status_code == 200


def test_create_admin_refuses_a_reserved_address():
    result = CliRunner().invoke(cli, ["users", "create-admin", "system@assistant.invalid", "--password-stdin"],
                                input=NEW_PASSWORD + "\n")

    assert result.exit_code != 0 and "reserved" in result.output
    assert role_of("system@assistant.invalid") is None


def submit(api, access_token: str):
    return api.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "call mom"}},
                    headers={"Authorization": f"Bearer {access_token}"})


@pytest.mark.parametrize("everywhere", [False, True])
def test_a_submit_authorised_from_redis_ends_with_the_sign_in(client, second_api, user, everywhere):
    """POST /v1/jobs reads no user row when Redis vouches for the token: a logout must still end it."""
    phone, laptop = tokens_of(client, user), tokens_of(client, user)
    assert submit(second_api, phone["access_token"]).status_code == 202

    client.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"], "everywhere": everywhere})

    assert_unauthorized(submit(second_api, phone["access_token"]), "token_revoked")
    if everywhere:
        assert_unauthorized(submit(second_api, laptop["access_token"]), "token_revoked")
    else:
        assert submit(second_api, laptop["access_token"]).status_code == 202


def test_a_submit_of_a_deleted_account_is_refused_through_redis(client, user, headers):
    from shared import revocation
    from shared.settings import get_settings

    assert submit(client, headers["Authorization"].split()[1]).status_code == 202
    with session_scope() as session:  # what account.delete does: the row goes, and Redis is told
        session.execute(delete(Job).where(Job.user_id == user.id))
        session.delete(session.get(User, user.id))
    revocation.publish_version(user.id, revocation.DELETED, get_settings())

    assert_unauthorized(submit(client, headers["Authorization"].split()[1]), "invalid_token")
