"""The signed-in user's profile: GET and PATCH /v1/me."""
from __future__ import annotations

import pytest


def test_me_is_the_signed_in_user(client, user, headers):
    response = client.get("/v1/me", headers=headers)

    assert response.status_code == 200
    assert response.json == {
        "id": str(user.id),
        "email": user.email,
        "role": "user",
        "timezone": "UTC",
        "digest_time": "07:00",
        "created_at": response.json["created_at"],
    }


def test_me_needs_a_token(client):
    response = client.get("/v1/me")

    assert response.status_code == 401
    assert response.json["code"] == "unauthorized"


def test_each_user_sees_only_themselves(client, other_user, other_headers):
    assert client.get("/v1/me", headers=other_headers).json["email"] == other_user.email


def test_patch_changes_timezone_and_digest_time(client, headers):
    response = client.patch("/v1/me", headers=headers,
                            json={"timezone": "America/New_York", "digest_time": "21:45"})

    assert response.status_code == 200, response.json
    assert response.json["timezone"] == "America/New_York"
    assert response.json["digest_time"] == "21:45"
    stored = client.get("/v1/me", headers=headers).json
    assert (stored["timezone"], stored["digest_time"]) == ("America/New_York", "21:45")


def test_patch_changes_one_field_and_keeps_the_other(client, headers):
    client.patch("/v1/me", headers=headers, json={"digest_time": "06:15"})

    response = client.patch("/v1/me", headers=headers, json={"timezone": "Asia/Tokyo"})

    assert (response.json["timezone"], response.json["digest_time"]) == ("Asia/Tokyo", "06:15")


@pytest.mark.parametrize("body", [{}, None], ids=["empty-object", "no-body"])
def test_an_empty_patch_changes_nothing(client, headers, body):
    before = client.get("/v1/me", headers=headers).json

    response = client.patch("/v1/me", headers=headers, json=body)

    assert response.status_code == 200, response.json
    assert response.json == before


@pytest.mark.parametrize(("body", "field"), [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "europe/berlin"}, "timezone"),
    ({"timezone": None}, "timezone"),
    ({"digest_time": "25:00"}, "digest_time"),
    ({"digest_time": "07:60"}, "digest_time"),
    ({"digest_time": "7:30"}, "digest_time"),
    ({"digest_time": "07:30:00"}, "digest_time"),
    ({"role": "admin"}, "role"),
    ({"email": "someone.else@example.com"}, "email"),
])
def test_patch_rejects_invalid_values_and_changes_nothing(client, headers, body, field):
    before = client.get("/v1/me", headers=headers).json

    response = client.patch("/v1/me", headers=headers, json={"digest_time": "08:00", **body})

    assert response.status_code == 422
    assert response.json["code"] == "validation_error"
    assert list(response.json["errors"]) == [field]
    assert client.get("/v1/me", headers=headers).json == before
