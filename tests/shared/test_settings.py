"""Settings from the environment."""
from __future__ import annotations

import pytest

from shared.settings import Settings, redis_db_url


@pytest.mark.parametrize(
    "base, offset, expected",
    [
        ("redis://127.0.0.1:6379/0", 1, "redis://127.0.0.1:6379/1"),
        ("redis://127.0.0.1:6379/10", 2, "redis://127.0.0.1:6379/12"),
        ("redis://:secret@cache:6380", 2, "redis://:secret@cache:6380/2"),
        ("rediss://cache:6380/3?ssl_cert_reqs=none", 1, "rediss://cache:6380/4?ssl_cert_reqs=none"),
    ],
)
def test_each_redis_use_gets_its_own_database(base, offset, expected):
    assert redis_db_url(base, offset) == expected


def test_unset_urls_select_the_embedded_default(monkeypatch, tmp_path):
    for name in ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EMBEDDED_REDIS_PORT", "7001")

    settings = Settings.from_env()

    assert settings.embedded_database and settings.embedded_redis
    assert settings.database_url == f"sqlite:///{tmp_path / 'assistant.db'}"
    assert settings.broker_url == "redis://127.0.0.1:7001/0"
    assert settings.cache_redis_url == "redis://127.0.0.1:7001/1"
    assert settings.ratelimit_storage_url == "redis://127.0.0.1:7001/2"


@pytest.mark.parametrize("url", ["postgres://u@db/x", "postgresql://u@db/x"])
def test_postgres_urls_use_psycopg2(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)

    settings = Settings.from_env()

    assert settings.database_url == "postgresql+psycopg2://u@db/x"
    assert not settings.embedded_database


def test_per_use_urls_can_be_set_apart(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/0")
    monkeypatch.setenv("BROKER_URL", "redis://broker:6379/5")

    settings = Settings.from_env()

    assert settings.broker_url == "redis://broker:6379/5"
    assert settings.cache_redis_url == "redis://r:6379/1"
