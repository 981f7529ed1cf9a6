"""Settings from the environment."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from shared.settings import Settings, configuration_problems, redis_db_url, variables
from tests.support import ROOT, ServerProcess, free_port, wait_until

pytestmark = pytest.mark.fast  # no PostgreSQL, Redis or worker


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


# -- checked at start -------------------------------------------------------------------


def problems_with(monkeypatch, **env) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return configuration_problems(Settings.from_env())


def test_the_test_settings_have_no_problem():
    from shared.settings import get_settings

    assert configuration_problems(get_settings()) == []


def test_a_derived_redis_database_out_of_range_names_redis_url(monkeypatch):
    # The case: /14 made the rate-limit database 16, and limits fell back to memory.
    [problem] = problems_with(monkeypatch, REDIS_URL="redis://:hunter2@cache:6379/14")
    assert problem.startswith("REDIS_URL") and "RATELIMIT_STORAGE_URL" in problem and "16" in problem
    assert "hunter2" not in problem
    assert problems_with(monkeypatch, REDIS_URL="redis://cache:6379/13") == []


def test_explicit_redis_urls_are_checked_by_their_own_name(monkeypatch):
    problems = problems_with(monkeypatch, CACHE_REDIS_URL="redis://cache:6379/16", BROKER_URL="http://broker/0")
    assert any(p.startswith("CACHE_REDIS_URL=") and "not 16" in p for p in problems)
    assert any(p.startswith("BROKER_URL=") and "redis://" in p for p in problems)


@pytest.mark.parametrize("name, value, says", [
    ("RATE_LIMIT_PER_MINUTE", "lots", "is not a whole number"),
    ("MAX_ACTIVE_JOBS_PER_USER", "0", "must be positive"),
    ("JWT_ACCESS_MINUTES", "-5", "must be positive"),
    ("DB_MAX_OVERFLOW", "-1", "must be 0 or more"),
    ("PORT", "70000", "not a port number"),
    ("AI_TIMEOUT_SECONDS", "soon", "is not a number"),
    ("SENTRY_TRACES_SAMPLE_RATE", "1.5", "between 0 and 1"),
    ("DATABASE_URL", "mysql://db/x", "must start with"),
    ("REDIS_URL", "redis://cache:notaport/0", "is not a URL"),
    ("OPENAI_BASE_URL", "localhost:11434/v1", "must start with http:// or https://"),
    ("S3_ENDPOINT_URL", "http://", "names no host"),
    ("OBJECT_STORAGE_URL", "s3://Not_A_Bucket/x", "must be s3://<bucket>/<prefix>"),
    ("APP_ENV", "staging", "must be one of development, production"),
    ("LOG_LEVEL", "loud", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("LOG_FORMAT", "xml", "should be 'json' or 'console'"),
    ("WORKER_CONCURRENCY", "-1", "must be positive"),
    ("RATE_LIMIT_ENABLED", "maybe", "is not true or false"),
    ("DATABASE_REPLICA_URL", "postgresql://db/x,mysql://db/y", "must start with postgres"),
])
def test_each_bad_value_is_named(monkeypatch, name, value, says):
    [problem] = problems_with(monkeypatch, **{name: value})
    assert problem.startswith(f"{name}=") and says in problem


def test_zero_means_off_where_it_can(monkeypatch):
    assert problems_with(monkeypatch, AI_DAILY_TOKEN_BUDGET="0", MAIL_RETENTION_DAYS="0", TRUSTED_PROXIES="0",
                         WORKER_METRICS_PORT="0") == []


def test_the_first_sketchs_pool_names_are_aliases(monkeypatch):
    monkeypatch.delenv("DB_POOL_SIZE", raising=False)
    monkeypatch.delenv("DB_MAX_OVERFLOW", raising=False)
    monkeypatch.setenv("DATABASE_POOL_SIZE", "7")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "3")
    settings = Settings.from_env()
    assert (settings.db_pool_size, settings.db_max_overflow) == (7, 3)
    [problem] = problems_with(monkeypatch, DB_POOL_SIZE="9")
    assert "DB_POOL_SIZE=9 and DATABASE_POOL_SIZE=7 disagree" in problem


def test_production_counts_rate_limits_in_redis_only(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "true")
    [problem] = problems_with(monkeypatch, APP_ENV="production", RATELIMIT_STORAGE_URL="memory://")
    assert problem.startswith("APP_ENV=production") and "RATELIMIT_STORAGE_URL" in problem
    assert problems_with(monkeypatch, APP_ENV="development") == []  # memory:// is fine on one machine
    monkeypatch.delenv("RATELIMIT_STORAGE_URL")
    monkeypatch.delenv("REDIS_URL")
    [problem] = problems_with(monkeypatch, APP_ENV="production")
    assert "set REDIS_URL" in problem
    assert problems_with(monkeypatch, APP_ENV="production", REDIS_URL="redis://cache:6379/0") == []


# -- APP_ENV: production refuses to start with unsafe settings ----------------------------

STRONG = "strong-and-random-enough-0123456789"
JOURNAL_KEY = "journal-key-random-enough-0123456789"
FERNET_KEY = "uHnrE0uOAuHJTBbFK0PGmHZ2TD8RFxUoUjEf3KQKb_A="


def production(monkeypatch, **env):
    monkeypatch.setenv("APP_ENV", "production")
    for name in ("SECRET_KEY", "JWT_SECRET", "GOOGLE_CLIENT_ID", "ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ERASURE_JOURNAL_KEY", JOURNAL_KEY)
    monkeypatch.setenv("AUDIT_CHAIN_KEY", "audit-chain-key-for-the-tests-0123456789")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return configuration_problems(Settings.from_env())


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
    """Each unsafe setting alone gives one problem, which names it."""
    (problem,) = production(monkeypatch, **env)
    assert problem.startswith(variable)


@pytest.mark.parametrize("value, says", [
    ("", "ERASURE_JOURNAL_KEY is unset"),
    ("e" * 31, "ERASURE_JOURNAL_KEY is 31 bytes long"),
    (STRONG, "must differ from SECRET_KEY"),
])
def test_production_needs_an_erasure_journal_key_of_its_own(monkeypatch, value, says):
    (problem,) = production(monkeypatch, SECRET_KEY=STRONG, ERASURE_JOURNAL_KEY=value)
    assert says in problem


@pytest.mark.parametrize("value, says", [
    ("", "AUDIT_CHAIN_KEY is unset"),
    ("a" * 31, "AUDIT_CHAIN_KEY is 31 bytes long"),
    (STRONG, "AUDIT_CHAIN_KEY must differ"),
])
def test_production_refuses_a_missing_or_weak_audit_chain_key(monkeypatch, value, says):
    (problem,) = production(monkeypatch, SECRET_KEY=STRONG, AUDIT_CHAIN_KEY=value)
    assert says in problem


def test_older_erasure_journal_keys_follow_the_newest(monkeypatch):
    monkeypatch.setenv("ERASURE_JOURNAL_KEY", f"{'n' * 32}, {'o' * 32}")
    assert Settings.from_env().erasure_journal_keys == ("n" * 32, "o" * 32)


def test_production_with_safe_settings_has_no_problem(monkeypatch):
    assert production(monkeypatch, SECRET_KEY=STRONG, GOOGLE_CLIENT_ID="x", ENCRYPTION_KEYS=FERNET_KEY) == []


def test_development_accepts_the_development_key_and_is_the_default(monkeypatch):
    monkeypatch.delenv("APP_ENV")
    monkeypatch.delenv("SECRET_KEY")
    settings = Settings.from_env()
    assert settings.app_env == "development" and not settings.app_env_set
    assert configuration_problems(settings) == []


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
    assert f"{process} refuses to start" in result.stderr and "SECRET_KEY is the development default" in result.stderr


def test_the_api_starts_in_production_with_safe_settings_and_warns_only_when_app_env_is_unset():
    server = ServerProcess({"APP_ENV": "production"}).start()
    try:
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        assert "APP_ENV is not set" not in server.log_tail()
        # Its control socket is its own (gunicorn's default, ~/.gunicorn/gunicorn.ctl, is every instance's).
        control = Path(os.environ["DATA_DIR"]) / f"gunicorn-{server.port}.ctl"
        wait_until(control.is_socket, timeout=15, message=f"gunicorn's control socket at {control}")
    finally:
        server.stop()
    unset = ServerProcess()
    unset.env.pop("APP_ENV")
    unset.start()
    try:
        assert "WARNING (api): APP_ENV is not set, so this runs as development" in unset.log_tail()
    finally:
        unset.stop()


# -- the environment, then .env in the current directory ---------------------------------


def assistant(*args, cwd, **env):
    """The real `assistant` command in `cwd`, with the suite's settings taken out of its environment."""
    clean = {k: v for k, v in os.environ.items() if k not in variables()}
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=cwd, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def shown(output: str) -> dict[str, tuple[str, str]]:
    return {line.split()[0]: (line.split()[1], " ".join(line.split()[2:])) for line in output.splitlines()}


def test_the_cli_reads_dotenv_in_the_current_directory_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://app:hunter2@db.example:5432/assistant\n"
                                   "PORT=8123\nFLOWER_PORT=5600\nSECRET_KEY=from-dotenv-secret\nJWT_SECRET=\n")

    result = assistant("settings", "show", cwd=tmp_path, FLOWER_PORT="5700")

    assert result.returncode == 0, result.stderr
    values = shown(result.stdout)
    assert values["DATABASE_URL"] == (".env", "postgresql://app:***@db.example:5432/assistant")
    assert values["PORT"] == (".env", "8123")
    assert values["FLOWER_PORT"] == ("env", "5700")  # the environment wins
    assert values["SECRET_KEY"] == (".env", "******") and "from-dotenv-secret" not in result.stdout
    assert values["JWT_SECRET"] == ("default", "******")  # empty: SECRET_KEY's value, redacted too
    assert values["WORKER_CONCURRENCY"] == ("default", "2")


def test_a_bad_setting_in_dotenv_stops_a_command_in_one_line(tmp_path):
    (tmp_path / ".env").write_text("DATABASE_URL=notaurl\n")

    result = assistant("jobs", "list", cwd=tmp_path)

    assert result.returncode == 78
    assert result.stderr.strip() == ("Error: DATABASE_URL='notaurl' must start with postgres:// or postgresql:// "
                                     "or sqlite://")


def test_the_settings_table_is_what_docs_settings_md_shows():
    from shared.cli.settings import markdown_table

    text = (ROOT / "docs" / "settings.md").read_text()
    assert markdown_table() in text, "run: assistant settings table, and paste it into docs/settings.md"


# -- each production refusal, by starting the process it guards --------------------------

REFUSALS = {
    # process: (command, the one unsafe setting, what the refusal says)
    "gunicorn without --config": (
        [sys.executable, "-m", "gunicorn", "--workers", "1", "api:create_app()"],
        {"WEBHOOK_ALLOW_PRIVATE": "true"}, "WEBHOOK_ALLOW_PRIVATE=true is for tests only"),
    "worker": (PROCESSES["worker"], {"GOOGLE_TOKEN_URI": "http://oauth2.example/token"},
               "GOOGLE_TOKEN_URI='http://oauth2.example/token' is http://"),
    "beat": (PROCESSES["beat"], {"JWT_SECRET": "x" * 40}, "JWT_SECRET is one character repeated"),
    "flower": ([sys.executable, "-m", "shared.cli", "flower"], {"FLOWER_BASIC_AUTH": ""},
               "FLOWER_BASIC_AUTH is unset: production serves Flower"),
}


@pytest.mark.parametrize("process", sorted(REFUSALS))
def test_each_production_refusal_stops_the_process_it_guards(process):
    """Started for real, each exits (gunicorn's arbiter halts, not reboots a worker forever), naming it."""
    command, unsafe, says = REFUSALS[process]
    port = str(free_port())
    env = {**os.environ, "APP_ENV": "production", "PORT": port, "FLOWER_PORT": port, **unsafe}
    if process.startswith("gunicorn"):
        env["GUNICORN_CMD_ARGS"] = f"--bind 127.0.0.1:{port}"

    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0
    assert says in result.stderr, result.stderr[-3000:]
    if process == "flower":  # an `assistant` command: one line, exit 78
        assert result.returncode == 78 and result.stderr.count("\n") == 1
    else:
        assert f"{'api' if process.startswith('gunicorn') else process} refuses to start" in result.stderr


def test_what_libraries_read_from_the_environment_comes_from_dotenv_too(tmp_path, monkeypatch):
    """boto3 reads AWS_* itself: `assistant backup create` with the store's keys in .env must find them."""
    from shared.settings import check_settings

    (tmp_path / ".env").write_text("AWS_ACCESS_KEY_ID=from-dotenv\nAWS_SECRET_ACCESS_KEY=also-from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")

    check_settings("test", Settings.from_env(), warn=False)

    assert os.environ["AWS_ACCESS_KEY_ID"] == "from-dotenv"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "from-the-environment"  # the environment wins


def test_replicas_are_refused_with_sqlite_and_a_read_after_write_window_below_the_lag(monkeypatch):
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgresql://replica-1/assistant, postgresql://replica-2/assistant")
    monkeypatch.setenv("REPLICA_MAX_LAG_SECONDS", "5")
    monkeypatch.setenv("REPLICA_READ_AFTER_WRITE_SECONDS", "3")
    settings = Settings.from_env()
    assert len(settings.database_replica_url) == 2
    [problem] = configuration_problems(settings)
    assert problem.startswith("REPLICA_READ_AFTER_WRITE_SECONDS=3 is below REPLICA_MAX_LAG_SECONDS=5")
    monkeypatch.setenv("REPLICA_READ_AFTER_WRITE_SECONDS", "5")
    assert configuration_problems(Settings.from_env()) == []
    monkeypatch.delenv("DATABASE_URL")
    [problem] = configuration_problems(Settings.from_env())
    assert problem.startswith("DATABASE_REPLICA_URL is set but the database is SQLite")
