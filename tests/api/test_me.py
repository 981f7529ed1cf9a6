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
        "locale": "en-US",
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


@pytest.mark.parametrize(("sent", "stored"), [
    ("de-DE", "de-DE"), ("en-gb", "en-GB"), ("fr", "fr"), ("es-419", "es-419"), ("EN_us", "en-US"),
    # Any region, also one CLDR has no data for in that language.
    ("de-US", "de-US"), ("es-CA", "es-CA"),
])
def test_patch_takes_a_locale_of_a_supported_language_in_babels_form(client, headers, sent, stored):
    response = client.patch("/v1/me", headers=headers, json={"locale": sent})

    assert response.status_code == 200, response.json
    assert response.json["locale"] == stored
    assert client.get("/v1/me", headers=headers).json["locale"] == stored


@pytest.mark.parametrize("sent", [
    "ja-JP", "xx", "zh-Hant-TW", "", "en-", "-US", "de-QQ", "en US", "en-US\n", "a" * 100, "en-US-x-private",
    "\u00e9n", 42, None, ["en"], {"en": 1},
])
def test_patch_refuses_any_other_locale_naming_the_supported_languages(client, headers, sent):
    response = client.patch("/v1/me", headers=headers, json={"locale": sent})

    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["code"] == "validation_error"
    if isinstance(sent, str):
        assert all(language in response.json["errors"]["locale"][0] for language in ("en", "de", "fr", "es"))
    assert client.get("/v1/me", headers=headers).json["locale"] == "en-US"


def test_register_takes_a_locale_and_defaults_to_en_us(client):
    made = client.post("/v1/auth/register", json={"email": "loc@example.com", "password": "long enough 1",
                                                   "locale": "fr-ca"})
    plain = client.post("/v1/auth/register", json={"email": "plain@example.com", "password": "long enough 1"})
    refused = client.post("/v1/auth/register", json={"email": "ja@example.com", "password": "long enough 1",
                                                      "locale": "ja-JP"})

    assert (made.status_code, made.json["locale"]) == (201, "fr-CA")
    assert (plain.status_code, plain.json["locale"]) == (201, "en-US")
    assert refused.status_code == 422 and "locale" in refused.json["errors"]
