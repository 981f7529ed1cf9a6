"""SQLAlchemy models. Alembic migrations (shared/migrations) are the only way the schema
is made; a change here needs a migration beside it."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware one")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")

# Stable constraint names, so migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


SYSTEM_ROLE = "system"
# Addresses of this domain belong to the platform (the system account's among them): nobody
# registers one. ".invalid" is reserved by RFC 2606, so no mailbox there is anybody's.
RESERVED_EMAIL_DOMAIN = "assistant.invalid"


def is_reserved_email(email: str) -> bool:
    domain = email.strip().lower().rpartition("@")[2].rstrip(".")
    return domain == RESERVED_EMAIL_DOMAIN or domain.endswith("." + RESERVED_EMAIL_DOMAIN)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # The platform's own account (shared.schedules.system_user) exists once.
        Index("ux_users_system", "role", unique=True,
              postgresql_where=text("role = 'system'"), sqlite_where=text("role = 'system'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")  # user | admin | system
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    digest_time: Mapped[str] = mapped_column(String(5), default="07:00")
    # BCP 47 (en-US, de-DE): day/month order and the language quick add reads (shared.locales).
    locale: Mapped[str] = mapped_column(String(35), default="en-US", server_default=text("'en-US'"))
    # Moved on by "log out everywhere": every access token carries the version it was issued under.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set: the account can neither sign in nor use a token (a squatter of a reserved address).
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A device or a webhook exists: a finished job of a user without either skips looking for
    # them. Set in the transaction that adds or removes one (shared.notifications.refresh_targets).
    has_notification_targets: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_admin(self) -> bool:
        # The system account owns the platform's admin-only jobs (backups, retention).
        return self.role in ("admin", SYSTEM_ROLE)


@dataclass(frozen=True)
class Principal:
    """A user as their current access token names them (id and role), for what needs no more:
    authorised without reading the row (api.security.authenticate with row=False)."""

    id: uuid.UUID
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", SYSTEM_ROLE)


class RefreshToken(Base):
    """A refresh token, stored as a hash; rotation chains tokens into one family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the token was exchanged for a new one; presenting it again is reuse.
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Job(Base):
    """A job: the row is the source of truth, the broker message carries only its id."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        # The platform's own keys (action:, schedule:, webhook:, beat:) in a scope of their
        # own: no key a user sends can take one first and stall the platform's submission.
        Index("ux_jobs_user_internal_key", "user_id", "internal_key", unique=True),
        Index("ix_jobs_user_created", "user_id", "created_at", "id"),
        Index("ix_jobs_status_enqueued", "status", "enqueued_at"),
        # The per-user cap on active jobs, kept by the database: each active job holds one
        # of its user's slots (0 .. cap-1), and a job that finishes leaves this index and so
        # frees its slot. Concurrent submissions of one user need no lock: two that pick the
        # same slot conflict, and the later one picks another. Only active rows are indexed,
        # so reading a user's slots stays cheap however many finished jobs they have.
        Index(
            "ux_jobs_user_active_slot", "user_id", "slot", unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
            sqlite_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    progress_message: Mapped[str | None] = mapped_column(String(500))
    result: Mapped[dict | None] = mapped_column(JSONType)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    internal_key: Mapped[str | None] = mapped_column(String(255))  # see ux_jobs_user_internal_key
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The Celery task id of the one message allowed to run this job now. A new message
    # (retry, sweeper) gets a new token, so a stale duplicate finds it changed and stops.
    run_token: Mapped[str] = mapped_column(String(36))
    # Null until the message was handed to the broker; the sweeper sends it when not.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slot: Mapped[int | None] = mapped_column(Integer)  # while active: see ux_jobs_user_active_slot
    # The submit's "notify": push when it finishes (null: the job type's default).
    notify: Mapped[bool | None] = mapped_column(Boolean)
    # Moved on by a trigger at every UPDATE (migration 0010): orders the job-status cache.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class Task(Base):
    """One of the user's to-dos."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        # The reminder tick reads only reminders not yet claimed.
        Index("ix_tasks_due_reminders", "remind_at",
              postgresql_where=text("reminded_at IS NULL AND remind_at IS NOT NULL AND NOT done"),
              sqlite_where=text("reminded_at IS NULL AND remind_at IS NOT NULL AND NOT done")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    notes: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    # The zone due_at is shown in: the user's zone when the task was made.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When to push a reminder (shared.reminders); reminded_at is set by the one tick that claims it.
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_status: Mapped[str | None] = mapped_column(String(16))  # sent | missed
    # An RFC 5545 RRULE value (shared.repeat) and its DTSTART: completing moves due_at on.
    repeat: Mapped[str | None] = mapped_column(String(256))
    repeat_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The quick-add job that made it: unique, so a re-run job cannot make it twice.
    source_job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TaskCompletion(Base):
    """One completed occurrence of a task (a repeating one records each; shared.todos)."""

    __tablename__ = "task_completions"
    __table_args__ = (Index("ix_task_completions_task_created", "task_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    # The owner, so an export finds the rows and an erasure removes them (shared.privacy).
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the occurrence that was done
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: the series ended
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarEvent(Base):
    """An event of the user's calendar, as last synced (Google Calendar fills it)."""

    __tablename__ = "calendar_events"
    __table_args__ = (
        UniqueConstraint("user_id", "calendar_id", "external_id"),
        Index("ix_calendar_events_user_start", "user_id", "start_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    calendar_id: Mapped[str] = mapped_column(String(255), default="primary")
    external_id: Mapped[str] = mapped_column(String(1024))  # the provider's event id
    summary: Mapped[str] = mapped_column(String(1024), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(1024), default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    attendees: Mapped[list] = mapped_column(JSONType, default=list)  # [{"email", "response_status"}]
    status: Mapped[str] = mapped_column(String(16), default="confirmed")  # confirmed | tentative | cancelled
    html_link: Mapped[str | None] = mapped_column(String(2048))
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MailMessage(Base):
    """Metadata of one of the user's mail messages, as last synced (Gmail fills it)."""

    __tablename__ = "mail_messages"
    __table_args__ = (
        UniqueConstraint("user_id", "external_id"),
        Index("ix_mail_messages_user_date", "user_id", "date", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))  # the provider's message id
    thread_id: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(String(2048), default="")
    sender: Mapped[str] = mapped_column(String(1024), default="")  # "from" in the API
    recipients: Mapped[list] = mapped_column(JSONType, default=list)  # "to" in the API
    snippet: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list] = mapped_column(JSONType, default=list)
    date: Mapped[datetime] = mapped_column(UTCDateTime)
    # The body, Fernet-encrypted (shared.crypto), when kept at all.
    body_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# -- schedules, reports, backups and privacy ---------------------------------------------


class Artifact(Base):
    """A large job result (HTML, PNG, an export archive), stored as a file under ARTIFACTS_DIR."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))  # relative to ARTIFACTS_DIR
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class Schedule(Base):
    """A user's automation: run a job type on a cron (in the user's timezone)."""

    __tablename__ = "schedules"
    __table_args__ = (
        # One default schedule of each kind per user (NULL kinds are the user's own).
        UniqueConstraint("user_id", "system_kind"),
        Index("ix_schedules_user_created", "user_id", "created_at", "id"),
        Index("ix_schedules_due", "enabled", "next_run_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    cron: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    job_type: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    overlap: Mapped[str] = mapped_column(String(8), default="skip")  # skip | allow
    # "daily_digest": the default digest, which follows the user's digest_time and timezone.
    system_kind: Mapped[str | None] = mapped_column(String(32))
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """Something that must be provable later without personal data (an erased account)."""

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event: Mapped[str] = mapped_column(String(64))
    # HMAC-SHA256 of the user id under SECRET_KEY: matches a known id, reveals nothing.
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditRecord(Base):
    """One read or change of a person's data by someone, a sign-in, an export... (shared.audit).

    Append-only, chained: `row_hash` is an HMAC (AUDIT_CHAIN_KEY) over the previous row's hash
    and this row's hashed content. The clear ids (`actor_id`, `subject_id`) are outside the
    hash so an erasure can clear them without breaking the chain; their keyed hashes are in it.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject_id", "seq"),
        Index("ix_audit_log_actor", "actor_id", "seq"),
        Index("ix_audit_log_created", "created_at"),
    )

    # Assigned by shared.audit under a lock: contiguous, so a deleted row shows as a gap.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))  # self | admin | operator | system
    actor_hash: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    subject_hash: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    # A retention checkpoint: the rows up to this seq were trimmed (details["last_hash"]: the last one's hash).
    checkpoint_seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    row_hash: Mapped[str] = mapped_column(String(64))
    # Not hashed, cleared by an erasure: who, in the clear, while they exist.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class StatusIncident(Base):
    """An incident or maintenance notice on the status page (`assistant status incident ...`)."""

    __tablename__ = "status_incidents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(200))
    component: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))  # minor | major | critical | maintenance
    # [{"at": iso time, "message": text, "state": "open" | "resolved"}], oldest first
    updates: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class StatusSample(Base):
    """A component's worst state of one UTC day, sampled by beat: the status page's history."""

    __tablename__ = "status_samples"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    component: Mapped[str] = mapped_column(String(48), primary_key=True)
    worst: Mapped[str] = mapped_column(String(16))  # operational | degraded | down


class Backup(Base):
    """A database backup file under BACKUP_DIR, with what it should restore to."""

    __tablename__ = "backups"
    __table_args__ = (Index("ix_backups_created", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    filename: Mapped[str] = mapped_column(String(255), unique=True)
    format: Mapped[str] = mapped_column(String(16))  # pg_custom | sqlite
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # {table: {"rows": n, "checksum": sha256 of the rows in primary-key order}}
    tables: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verify_status: Mapped[str | None] = mapped_column(String(16))  # ok | failed
    verify_message: Mapped[str | None] = mapped_column(Text)
    # Taken by hand (the CLI, an admin's "Back up now"), not by beat: kept BACKUP_KEEP_MANUAL_DAYS.
    manual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class GoogleIntegration(Base):
    """A user's connected Google account: OAuth tokens (encrypted) and each sync's position."""

    __tablename__ = "google_integrations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # connected | reauth_required (the grant was revoked or expired: syncs stop until reconnected)
    status: Mapped[str] = mapped_column(String(16), default="connected")
    scopes: Mapped[list] = mapped_column(JSONType, default=list)
    # Fernet tokens (shared.crypto), never the plaintext.
    refresh_token_encrypted: Mapped[str] = mapped_column(Text)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    calendar_sync_token: Mapped[str | None] = mapped_column(Text)
    mail_history_id: Mapped[str | None] = mapped_column(String(64))
    calendar_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mail_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    # Calendar push channel (events.watch): Google echoes the token, of which we keep a hash.
    calendar_channel_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    calendar_channel_resource_id: Mapped[str | None] = mapped_column(String(255))
    calendar_channel_token_hash: Mapped[str | None] = mapped_column(String(64))
    calendar_channel_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GooglePendingLink(Base):
    """Tokens from a Google consent, waiting (encrypted, 10 minutes) for the app of the user
    who asked to complete the link with its one-time code (shared.google_oauth)."""

    __tablename__ = "google_pending_links"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the link code
    scopes: Mapped[list] = mapped_column(JSONType, default=list)  # as granted, perhaps fewer than asked
    refresh_token_encrypted: Mapped[str] = mapped_column(Text)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class GoogleWrite(Base):
    """A write made at Google for one action, so a retried job finds it instead of writing twice."""

    __tablename__ = "google_writes"
    __table_args__ = (UniqueConstraint("user_id", "kind", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # calendar_event | gmail_draft
    key: Mapped[str] = mapped_column(String(64))  # the action id (or the job id)
    # Null while the write is in flight: a retry then looks for it at Google first.
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- AI agents ---------------------------------------------------------------------------


class AgentThread(Base):
    """A conversation with the assistant; `agent.assistant` jobs continue it by id."""

    __tablename__ = "agent_threads"
    __table_args__ = (Index("ix_agent_threads_user_created", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200), default="")
    # A turn of this thread read third-party text: every later run of it is tainted too
    # (the text is in its history), so its writes are proposals (workers.ai.tools).
    tainted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ThreadMessage(Base):
    """One turn of a thread: the user's message or the assistant's reply."""

    __tablename__ = "thread_messages"
    __table_args__ = (Index("ix_thread_messages_thread_created", "thread_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    thread_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agent_threads.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    content: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProposedAction(Base):
    """A side effect outside our database that an agent proposed; it runs only once approved.

    Approving submits `kind` (a job type) with `params`; `action_job_id` records that job,
    so a second approval answers with it instead of making another.
    """

    __tablename__ = "proposed_actions"
    __table_args__ = (Index("ix_proposed_actions_job", "job_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))  # the agent's job
    # calendar.create_event | mail.create_draft | tasks.create | tasks.update | tasks.complete
    # | memories.create (the last four only from tainted runs, or memories from any run)
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    summary: Mapped[str] = mapped_column(String(500), default="")
    # What approving does, rendered from params by code (workers.ai.previews), never by the
    # model: every recipient, the whole body, links with their hosts, a task before/after.
    preview: Mapped[dict | None] = mapped_column(JSONType, default=dict)
    # proposed | approved | rejected; "expired" is shown for a proposal older than ACTION_TTL_DAYS.
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    reason: Mapped[str] = mapped_column(String(1000), default="", server_default="")  # the user's, on reject
    action_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Memory(Base):
    """A short fact the user keeps for the agents ("my manager is Dana"); agents only propose them."""

    __tablename__ = "memories"
    __table_args__ = (Index("ix_memories_user_created", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(500))
    # {"kind": "user"} | {"kind": "job", "id": ...} | {"kind": "message", "id": ...}
    source: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AiUsage(Base):
    """Tokens of one call to the AI provider, written as soon as it answers (spent even if
    the job later fails); the daily budget sums them."""

    __tablename__ = "ai_usage"
    __table_args__ = (Index("ix_ai_usage_user_created", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    agent_type: Mapped[str] = mapped_column(String(64))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- notifications: devices, pushes and webhooks ------------------------------------------


class Device(Base):
    """A phone (an FCM registration token) or a browser (a Web Push subscription) of a user."""

    __tablename__ = "devices"
    # Keyed by (user, token): the same user registering a token again is the same device;
    # another user (accounts switched on one phone) gets a row of their own and never
    # changes the first one's keys. A token the push service calls gone removes every row.
    __table_args__ = (UniqueConstraint("user_id", "platform", "token_hash"), Index("ix_devices_token_hash", "token_hash"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))  # fcm | webpush
    # The FCM token, or the PushSubscription JSON; its SHA-256 is the identity.
    token: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NotificationSend(Base):
    """One push of one event to one device: the record that makes delivery at least once
    and, but for a worker killed between FCM's answer and this row's commit, at most once."""

    __tablename__ = "notification_sends"
    __table_args__ = (
        UniqueConstraint("device_id", "event_key"),
        Index("ix_notification_sends_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))  # fcm | webpush
    # What happened, e.g. "task.reminder:<task id>": one push per device and event.
    event_key: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000), default="")
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    # pending -> sending -> sent | failed | removed (the device was gone)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Webhook(Base):
    """An integrator's endpoint, called with signed events (Standard Webhooks)."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_user_created", "user_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list] = mapped_column(JSONType, default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text)  # the whsec_ secret, Fernet-encrypted
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook, with its attempts; retried until it succeeds or ~24 h pass."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_key"),
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at", "id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    # pending (waiting for next_attempt_at) -> sending -> succeeded | failed (gave up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PasswordReset(Base):
    """A single-use password-reset link: only the SHA-256 of its token is stored."""

    __tablename__ = "password_resets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when it was used, or voided by a newer link: the one UPDATE that consumes it checks it.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
