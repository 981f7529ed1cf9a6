"""Hostile strings, numbers and nesting get a 400 naming the problem: never a 500, never a traceback.

Each payload here answered 500 before (PostgreSQL refuses NUL and lone surrogates, the
json module reads NaN and overflows its recursion at depth), and logged the SQL with it.
"""
from __future__ import annotations

import json
import logging

import pytest

from tests.factories import make_task

NUL, SURROGATE = "\\u0000", "\\ud800"  # as they appear in JSON text


def post_raw(client, path: str, text: str, headers=None):
    return client.post(path, data=text.encode(), content_type="application/json", headers=headers or {})


def assert_refused(response, code: str, field: str | None = None) -> dict:
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    body = response.json
    assert body["code"] == code and body["message"]
    if field is not None:
        assert field in body["errors"], body
    return body


@pytest.fixture(autouse=True)
def no_tracebacks(caplog):
    caplog.set_level(logging.ERROR)
    yield
    assert "unhandled error" not in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize("escape", [NUL, SURROGATE])
def test_bad_characters_in_job_params(client, headers, escape):
    body = '{"type": "tasks.quick_add", "params": {"text": "call mom %s tomorrow"}}' % escape

    refused = assert_refused(post_raw(client, "/v1/jobs", body, headers), "invalid_characters", "params.text")

    assert "U+" in refused["errors"]["params.text"][0]
    assert client.get("/v1/jobs", headers=headers).json["items"] == []


@pytest.mark.parametrize("escape", [NUL, SURROGATE])
@pytest.mark.parametrize("field", ["title", "notes"])
def test_bad_characters_in_a_task_edit(client, headers, user, escape, field):
    task = make_task(user, title="water the plants")

    response = client.patch(f"/v1/tasks/{task.id}", data='{"%s": "x%sy"}' % (field, escape),
                            content_type="application/json", headers=headers)

    assert_refused(response, "invalid_characters", field)
    assert client.get(f"/v1/tasks/{task.id}", headers=headers).json["title"] == "water the plants"


@pytest.mark.parametrize("escape", [NUL, SURROGATE])
def test_bad_characters_in_the_login_email(client, escape):
    body = '{"email": "ada%s@example.com", "password": "correct horse battery"}' % escape
    assert_refused(post_raw(client, "/v1/auth/login", body), "invalid_characters", "email")


def test_a_bad_character_in_a_key_is_refused_too(client, headers):
    body = '{"type": "tasks.quick_add", "params": {"te\\u0000xt": "hi"}}'
    assert_refused(post_raw(client, "/v1/jobs", body, headers), "invalid_characters")


@pytest.mark.parametrize("key", ["a\x00b", "x\ud800"])
def test_bad_characters_in_the_idempotency_key(client, headers, key):
    response = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "hi"}},
                           headers={**headers, "Idempotency-Key": key})
    assert_refused(response, "invalid_characters", "Idempotency-Key")


def test_raw_surrogate_bytes_are_not_utf8(client):
    data = b'{"email": "\xed\xa0\x80@example.com", "password": "x"}'
    response = client.post("/v1/auth/login", data=data, content_type="application/json")
    assert_refused(response, "invalid_json")


@pytest.mark.parametrize("path, name", [
    ("/v1/jobs", "type"), ("/v1/tasks", "tag"), ("/v1/mail/messages", "q"), ("/v1/mail/messages", "label"),
])
def test_a_nul_in_a_query_parameter(client, headers, path, name):
    assert_refused(client.get(f"{path}?{name}=ab%00cd", headers=headers), "invalid_characters", name)


@pytest.mark.parametrize("path, name", [("/v1/jobs", "type"), ("/v1/mail/messages", "label")])
def test_surrogate_bytes_in_a_query_are_read_as_replacement_characters(client, headers, path, name):
    # Not UTF-8, so werkzeug decodes them as U+FFFD: harmless, and found nothing.
    response = client.get(f"{path}?{name}=%ED%A0%80", headers=headers)
    assert response.status_code == 200 and response.json["items"] == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_params(client, admin_headers, constant):
    # ops.ping's sleep_seconds is a number with bounds, which NaN slips past (every comparison is false).
    body = '{"type": "ops.ping", "params": {"sleep_seconds": %s}}' % constant

    refused = assert_refused(post_raw(client, "/v1/jobs", body, admin_headers), "invalid_json", "json")

    assert constant.lstrip("-") in refused["message"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/auth/login", "/v1/auth/logout"])
def test_a_body_nested_100000_deep(client, headers, path):
    depth = 100_000
    body = '{"type": "tasks.quick_add", "params": {"x": ' + "[" * depth + "]" * depth + "}}"

    refused = assert_refused(post_raw(client, path, body, headers), "json_too_deep")

    assert "64" in refused["message"]


def test_depth_64_is_read_and_65_is_refused(client):
    def nested(levels: int) -> str:
        return '{"email": "a@example.com", "password": "x", "n": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    assert client.post("/v1/auth/login", data=nested(64), content_type="application/json").status_code == 422
    assert_refused(client.post("/v1/auth/login", data=nested(65), content_type="application/json"),
                   "json_too_deep")


def test_ordinary_unicode_still_goes_through(client, headers):
    text = "call mom 📞 tomorrow — straße"
    response = client.post("/v1/jobs", data=json.dumps({"type": "tasks.quick_add", "params": {"text": text}}),
                           content_type="application/json", headers=headers)
    assert response.status_code == 202 and response.json["params"]["text"] == text

