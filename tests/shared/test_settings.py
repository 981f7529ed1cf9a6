"""Settings from the environment."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from shared.settings import Settings, redis_db_url, startup_problems
from tests.support import ROOT, ServerProcess, free_port


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


# -- APP_ENV: production refuses to start with unsafe settings ----------------------------

STRONG = "s" * 32
FERNET_KEY = "uHnrE0uOAuHJTBbFK0PGmHZ2TD8RFxUoUjEf3KQKb_A="


def production(monkeypatch, **env):
    monkeypatch.setenv("APP_ENV", "production")
    for name in ("SECRET_KEY", "JWT_SECRET", "GOOGLE_CLIENT_ID", "ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return startup_problems(Settings.from_env())


def test_production_refuses_the_development_key(monkeypatch):
    (problem,) = production(monkeypatch)
    assert problem.startswith("SECRET_KEY is the development default")


@pytest.mark.parametrize("env, variable", [
    ({"SECRET_KEY": "s" * 31}, "SECRET_KEY"),
    ({"SECRET_KEY": STRONG, "JWT_SECRET": "short"}, "JWT_SECRET"),
    ({"SECRET_KEY": STRONG, "JWT_SECRET": "dev-insecure-secret-key-change-me-in-production"}, "JWT_SECRET"),
    ({"SECRET_KEY": STRONG, "GOOGLE_CLIENT_ID": "x.apps.googleusercontent.com"}, "ENCRYPTION_KEYS"),
    ({"SECRET_KEY": STRONG, "GOOGLE_CLIENT_ID": "x", "ENCRYPTION_KEYS": "not-a-key"}, "ENCRYPTION_KEYS"),
])
def test_production_names_each_unsafe_setting(monkeypatch, env, variable):
    (problem,) = production(monkeypatch, **env)
    assert problem.startswith(variable)


def test_production_with_safe_settings_has_no_problem(monkeypatch):
    assert production(monkeypatch, SECRET_KEY=STRONG, GOOGLE_CLIENT_ID="x", ENCRYPTION_KEYS=FERNET_KEY) == []


def test_development_accepts_the_development_key_and_is_the_default(monkeypatch):
    monkeypatch.delenv("APP_ENV")
    monkeypatch.delenv("SECRET_KEY")
    settings = Settings.from_env()
    assert settings.app_env == "development" and not settings.app_env_set
    assert startup_problems(settings) == []


def test_an_unknown_app_env_is_refused_everywhere(monkeypatch):
    monkeypatch.setenv("APP_ENV", "prod")
    (problem,) = startup_problems(Settings.from_env())
    assert problem.startswith("APP_ENV is 'prod'")


PROCESSES = {
    "api": [sys.executable, "-m", "gunicorn", "--config", "ops/gunicorn.conf.py", "api:create_app()"],
    "worker": [sys.executable, "-m", "celery", "-A", "shared.celery_app", "worker", "--pool", "solo",
               "--queues", "interactive"],
    "beat": [sys.executable, "-m", "celery", "-A", "scheduler", "beat", "--schedule", "/tmp/assistant-test-beat-refused"],
}


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_each_process_refuses_to_start_in_production_with_the_development_key(process):
    """The real commands (Procfile, image) exit non-zero before serving, naming the variable."""
    env = {**os.environ, "APP_ENV": "production", "PORT": str(free_port())}
    env.pop("SECRET_KEY")
    env.pop("JWT_SECRET")

    result = subprocess.run(PROCESSES[process], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert f"{process}: refusing to start" in result.stderr and "SECRET_KEY is the development default" in result.stderr


def test_the_api_starts_in_production_with_safe_settings_and_warns_only_when_app_env_is_unset():
    server = ServerProcess({"APP_ENV": "production"}).start()
    try:
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        assert "APP_ENV is not set" not in server.log_tail()
    finally:
        server.stop()
    unset = ServerProcess()
    unset.env.pop("APP_ENV")
    unset.start()
    try:
        assert "WARNING (api): APP_ENV is not set, so this runs as development" in unset.log_tail()
    finally:
        unset.stop()
