"""Rate limits: per user with a token, per IP without one, stricter on the credential endpoints.

The counters live in the real Redis; every test sends from IP addresses of its own (and
the users are new), so neither a parallel run nor an earlier test shares its counters.
"""
from __future__ import annotations

import random

import pytest

from api import create_app

PER_MINUTE = 3
CREDENTIALS_PER_MINUTE = 2


@pytest.fixture
def limited_client(settings):
    limited = settings.replace(rate_limit_enabled=True, rate_limit_per_minute=PER_MINUTE,
        rate_limit_burst=100, auth_rate_limit_per_minute=CREDENTIALS_PER_MINUTE,
    )
    return create_app(limited).test_client()


def new_ip() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture
def ip():
    return new_ip()


def get_me(client, ip: str, headers: dict | None = None):
    return client.get("/v1/me", headers=headers or {}, environ_base={"REMOTE_ADDR": ip})


def bad_refresh(client, ip: str):
    return client.post("/v1/auth/refresh", json={"refresh_token": "not-a-token"}, environ_base={"REMOTE_ADDR": ip})


def assert_rate_limited(response):
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.json["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0


def test_a_user_over_the_limit_gets_429_with_retry_after(limited_client, headers, ip):
    for _ in range(PER_MINUTE):
        assert get_me(limited_client, ip, headers).status_code == 200

    assert_rate_limited(get_me(limited_client, ip, headers))


def test_the_limit_is_per_user(limited_client, headers, other_headers, ip):
    for _ in range(PER_MINUTE + 1):
        get_me(limited_client, ip, headers)

    assert get_me(limited_client, ip, other_headers).status_code == 200


def test_anonymous_requests_are_limited_per_ip(limited_client, ip):
    for _ in range(PER_MINUTE):
        assert get_me(limited_client, ip).status_code == 401

    assert_rate_limited(get_me(limited_client, ip))
    assert get_me(limited_client, new_ip()).status_code == 401


def test_a_user_keeps_working_when_their_ip_is_spent_anonymously(limited_client, headers, ip):
    for _ in range(PER_MINUTE + 1):
        get_me(limited_client, ip)

    assert get_me(limited_client, ip, headers).status_code == 200


def test_credential_endpoints_have_a_stricter_per_ip_limit(limited_client, headers, ip):
    for _ in range(CREDENTIALS_PER_MINUTE):
        assert bad_refresh(limited_client, ip).status_code == 401

    assert_rate_limited(bad_refresh(limited_client, ip))
    login = limited_client.post("/v1/auth/login", json={"email": "a@example.com", "password": "x"},
                                environ_base={"REMOTE_ADDR": ip})
    assert_rate_limited(login)
    assert get_me(limited_client, ip, headers).status_code == 200  # the rest of the API is open
    assert bad_refresh(limited_client, new_ip()).status_code == 401  # and so are other IPs


def test_health_is_never_limited_and_never_counted(limited_client, ip):
    for _ in range(PER_MINUTE * 5):
        assert limited_client.get("/health", environ_base={"REMOTE_ADDR": ip}).status_code == 200
    assert get_me(limited_client, ip).status_code == 401  # the probes did not spend the budget

    for _ in range(PER_MINUTE):
        get_me(limited_client, ip)
    assert_rate_limited(get_me(limited_client, ip))
    assert limited_client.get("/health", environ_base={"REMOTE_ADDR": ip}).status_code == 200


def test_limits_are_off_when_disabled(client, headers, ip):
    for _ in range(PER_MINUTE * 2):
        assert get_me(client, ip, headers).status_code == 200


def test_the_limiter_leaves_a_202s_poll_hint_alone(limited_client, headers, ip):
    response = limited_client.post("/v1/jobs", headers=headers, environ_base={"REMOTE_ADDR": ip},
                                   json={"type": "tasks.quick_add", "params": {"text": "buy milk"}})

    assert response.status_code == 202
    assert response.headers["Retry-After"] == "1"  # the job type's poll interval, not a limit's reset


def test_retry_after_of_a_429_is_when_the_window_frees_up(limited_client, headers, ip):
    for _ in range(PER_MINUTE):
        get_me(limited_client, ip, headers)

    retry_after = int(get_me(limited_client, ip, headers).headers["Retry-After"])

    assert 1 <= retry_after <= 61


def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_client(settings, headers):
    client = create_app(settings.replace(rate_limit_enabled=True, rate_limit_per_minute=PER_MINUTE,
                                            rate_limit_burst=100, trusted_proxies=1)).test_client()
    proxy, first, second = new_ip(), new_ip(), new_ip()

    def anonymous(client_ip):
        return client.get("/v1/job-types", environ_base={"REMOTE_ADDR": proxy},
                          headers={"X-Forwarded-For": client_ip})

    for _ in range(PER_MINUTE):
        anonymous(first)

    assert anonymous(first).status_code == 429
    assert anonymous(second).status_code == 401  # another client behind the same proxy is let through


def test_a_batch_counts_its_items_against_the_limit(limited_client, headers, ip):
    """A 100-item batch costs about 100 submits: it may not count as one request."""
    quick_add = {"type": "tasks.quick_add", "params": {"text": "call mom"}}
    batch = limited_client.post("/v1/jobs/batch", json={"jobs": [quick_add] * PER_MINUTE}, headers=headers,
                                environ_base={"REMOTE_ADDR": ip})
    assert batch.status_code == 200, batch.json

    assert_rate_limited(get_me(limited_client, ip, headers))
