"""/v1/memories: the user's facts for the agents (no worker needed)."""
from __future__ import annotations

import pytest

from api import create_app


def test_a_memory_is_kept_cleaned_listed_changed_and_forgotten(client, headers, other_headers):
    created = client.post("/v1/memories", json={"text": "  my manager is\u200b Dana\U000E0041 "}, headers=headers)

    assert created.status_code == 201, created.json
    memory = created.json
    assert memory["text"] == "my manager is Dana" and memory["source"] == {"kind": "user"}
    assert [m["id"] for m in client.get("/v1/memories", headers=headers).json["items"]] == [memory["id"]]
    assert client.get("/v1/memories", headers=other_headers).json["items"] == []
    url = f"/v1/memories/{memory['id']}"
    assert client.patch(url, json={"text": "x"}, headers=other_headers).status_code == 404
    assert client.delete(url, headers=other_headers).status_code == 404

    changed = client.patch(url, json={"text": "no meetings before 10"}, headers=headers)
    assert changed.status_code == 200 and changed.json["text"] == "no meetings before 10"
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404


@pytest.mark.parametrize("text", ["x" * 501, "", "\u200b\u200c", "\x00"])
def test_bad_text_is_422_naming_the_field(client, headers, text):
    response = client.post("/v1/memories", json={"text": text}, headers=headers)

    assert response.status_code in (400, 422), response.json  # a NUL is the api's 400 invalid_characters
    assert "text" in response.json["errors"]


def test_at_the_limit_a_new_memory_is_409(settings, headers):
    client = create_app(settings.replace(max_memories_per_user=2)).test_client()
    for text in ("one", "two"):
        assert client.post("/v1/memories", json={"text": text}, headers=headers).status_code == 201

    refused = client.post("/v1/memories", json={"text": "three"}, headers=headers)

    assert refused.status_code == 409 and refused.json["code"] == "memory_limit_reached"
    assert len(client.get("/v1/memories", headers=headers).json["items"]) == 2
