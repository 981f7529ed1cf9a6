"""Every error is JSON {"code", "message", "errors"?} with the right status: never HTML, never a trace."""
from __future__ import annotations

import pytest

from api import create_app

LOGIN = "/v1/auth/login"


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.json
    assert body["code"] == code
    assert body["message"]
    assert set(body) <= {"code", "message", "errors"}
    assert "<html" not in response.get_data(as_text=True).lower()
    return body


def test_unknown_route_is_a_json_404(client):
    assert_json_error(client.get("/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_is_a_json_405_naming_the_allowed_ones(client):
    response = client.get(LOGIN)

    assert_json_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_an_unknown_route_is_a_404_whatever_its_body(client):
    assert_json_error(client.post("/v1/no-such-thing", data="x", content_type="text/plain"), 404, "not_found")


@pytest.fixture
def small_client(settings):
    return create_app(settings.replace(max_request_bytes=200)).test_client()


def test_a_json_body_over_the_limit_is_a_413(small_client):
    response = small_client.post(LOGIN, json={"email": "someone@example.com", "password": "x" * 300})

    body = assert_json_error(response, 413, "payload_too_large")
    assert "200 bytes" in body["message"]


def test_any_body_over_the_limit_is_a_413_even_where_no_view_reads_it(small_client):
    assert_json_error(small_client.get("/health", data="x" * 300), 413, "payload_too_large")
    assert_json_error(small_client.post(LOGIN, data="x" * 300, content_type="text/plain"), 413,
                      "payload_too_large")


def test_a_body_under_the_limit_is_read(small_client):
    assert_json_error(small_client.post(LOGIN, json={"email": "a@example.com", "password": "wrong"}), 401,
                      "invalid_credentials")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_that_is_not_json_is_a_415(client, content_type):
    response = client.post(LOGIN, data="email=a@example.com&password=secret", content_type=content_type)

    body = assert_json_error(response, 415, "unsupported_media_type")
    assert "application/json" in body["message"]


def test_json_with_a_charset_or_a_json_suffix_type_is_json(client):
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(LOGIN, data='{"email": "a"}', content_type=content_type)
        assert_json_error(response, 422, "validation_error")


def test_a_post_without_a_body_needs_no_content_type(client):
    assert client.post("/v1/auth/logout").status_code == 204


def test_malformed_json_is_a_400_saying_so(client):
    response = client.post(LOGIN, data='{"email": "a@example.com",', content_type="application/json")

    body = assert_json_error(response, 400, "invalid_json")
    assert body["errors"] == {"json": ["Invalid JSON body."]}


def test_validation_errors_name_each_field(client):
    response = client.post(LOGIN, json={"email": "", "surprise": 1})

    body = assert_json_error(response, 422, "validation_error")
    assert set(body["errors"]) == {"email", "password", "surprise"}
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())


def test_json_that_is_not_an_object_is_a_422(client):
    body = assert_json_error(client.post(LOGIN, json=["a@example.com", "secret"]), 422, "validation_error")
    assert body["errors"]


def test_an_unexpected_exception_is_a_json_500_without_details(settings, caplog):
    app = create_app(settings)

    @app.get("/v1/test-explodes")
    def explode():
        raise RuntimeError("database password is hunter2")

    response = app.test_client().get("/v1/test-explodes")

    body = assert_json_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert body == {"code": "internal_error", "message": body["message"]}
    assert "hunter2" in caplog.text  # logged for us, not shown to the client
