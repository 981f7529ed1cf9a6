"""Google integration endpoints on a server where Google is not (fully) configured."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from api import create_app

GOOGLE = dict(google_client_id="id", google_client_secret="secret",
              google_redirect_uri="http://127.0.0.1:8000/v1/integrations/google/callback")


def client_with(settings, **changes):
    app = create_app(settings.replace(**changes))
    app.config["TESTING"] = True
    return app.test_client()


def test_sync_types_are_unavailable_without_google(client, headers):
    items = {t["type"]: t for t in client.get("/v1/job-types", headers=headers).json["items"]}
    assert items["calendar.sync"]["available"] is False and items["mail.sync"]["available"] is False

    response = client.post("/v1/jobs", json={"type": "calendar.sync", "params": {}}, headers=headers)

    assert response.status_code == 503 and response.json["code"] == "google_not_configured"


@pytest.mark.parametrize("missing", ["ENCRYPTION_KEYS", "GOOGLE_CLIENT_ID"])
def test_connecting_needs_client_and_keys(settings, headers, missing):
    changes = dict(GOOGLE, encryption_keys=(Fernet.generate_key().decode(),))
    if missing == "ENCRYPTION_KEYS":
        changes["encryption_keys"] = ()
    else:
        changes["google_client_id"] = ""
    client = client_with(settings, **changes)

    response = client.post("/v1/integrations/google/authorize", headers=headers)

    assert response.status_code == 503 and response.json["code"] == "google_not_configured"
    assert missing in response.json["message"]
    items = {t["type"]: t for t in client.get("/v1/job-types", headers=headers).json["items"]}
    assert items["mail.sync"]["available"] is False


def test_configured_sync_types_are_available_and_the_consent_url_uses_pkce(settings, headers):
    client = client_with(settings, **GOOGLE, encryption_keys=(Fernet.generate_key().decode(),),
                         google_auth_uri="https://accounts.example/auth")
    items = {t["type"]: t for t in client.get("/v1/job-types", headers=headers).json["items"]}
    assert items["calendar.sync"]["available"] is True

    url = client.post("/v1/integrations/google/authorize", headers=headers).json["url"]

    assert url.startswith("https://accounts.example/auth?")
    for part in ("code_challenge_method=S256", "access_type=offline", "state=", "calendar.events",
                 "gmail.readonly", "gmail.compose"):
        assert part in url


def test_callback_without_a_valid_state_is_400(settings):
    client = client_with(settings, **GOOGLE, encryption_keys=(Fernet.generate_key().decode(),))
    response = client.get("/v1/integrations/google/callback?code=x&state=nope")
    assert response.status_code == 400 and response.json["code"] == "invalid_state"


def test_integrations_list_and_reads_need_auth_and_start_empty(client, headers):
    assert client.get("/v1/integrations").status_code == 401
    item = client.get("/v1/integrations", headers=headers).json["items"][0]
    assert item["provider"] == "google" and item["connected"] is False and item["configured"] is False
    assert client.delete("/v1/integrations/google", headers=headers).status_code == 404
    assert client.get("/v1/calendar/events", headers=headers).json == {"items": [], "next_cursor": None}
    assert client.get("/v1/mail/messages", headers=headers).json == {"items": [], "next_cursor": None}


def test_bad_read_parameters_are_422(client, headers):
    bad = client.get("/v1/calendar/events?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", headers=headers)
    assert bad.status_code == 422
    assert client.get("/v1/calendar/events?from=yesterday", headers=headers).status_code == 422
    assert client.get("/v1/mail/messages?cursor=garbage", headers=headers).status_code == 422
    assert client.get("/v1/mail/messages/not-a-uuid", headers=headers).status_code == 404
