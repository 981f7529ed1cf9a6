"""Marshmallow schemas: request validation and the OpenAPI document."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, available_timezones

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from shared import repeat as repeat_rules
from shared.jobs import STATUSES
from shared.locales import DEFAULT_LOCALE, SUPPORTED_LANGUAGES, LocaleError, normalize_locale
from shared.models import RESERVED_EMAIL_DOMAIN, is_reserved_email
from shared.todos import PRIORITIES


def page_schema(item: type[Schema], name: str, *, base: type[Schema] = Schema,
                items_description: str | None = None) -> type[Schema]:
    """The envelope of every list, `{"items": [item...], "next_cursor": "<opaque>" | null}`.

    `name` is the class name, so the OpenAPI component keeps its name (JobPageSchema -> JobPage).
    """
    metadata = {"description": items_description} if items_description else {}
    return type(name, (base,), {"items": fields.List(fields.Nested(item), metadata=metadata),
                                "next_cursor": fields.String(allow_none=True)})


def validate_timezone(value: str) -> None:
    if value not in _zones():
        raise ValidationError("Not an IANA timezone name (e.g. Europe/Berlin).")
    ZoneInfo(value)


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


# -- auth and profile ------------------------------------------------------------------


class LocaleTag(fields.String):
    """A BCP 47 tag of a supported language, loaded in Babel's normal form (en-gb -> en-GB)."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return normalize_locale(super()._deserialize(value, attr, data, **kwargs))
        except LocaleError as exc:
            raise ValidationError(str(exc)) from None


LOCALE_DESCRIPTION = (f"BCP 47 (en-US, en-GB, de-DE, fr-FR, es-ES); the language is one of "
                      f"{', '.join(SUPPORTED_LANGUAGES)}, any region. It sets the day/month order and the "
                      "language quick add reads.")


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=8, max=256))
    timezone = fields.String(load_default="UTC", validate=validate_timezone)
    locale = LocaleTag(load_default=DEFAULT_LOCALE, metadata={"description": LOCALE_DESCRIPTION})

    @validates("email")
    def _not_reserved(self, value: str, **_kwargs) -> None:
        if is_reserved_email(value):
            raise ValidationError(f"Addresses at {RESERVED_EMAIL_DOMAIN} are reserved for the platform.")


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class LogoutSchema(Schema):
    refresh_token = fields.String(load_default=None, validate=validate.Length(max=512))
    everywhere = fields.Boolean(load_default=False,
                                metadata={"description": "true: sign out every device of this account"})


NEW_PASSWORD = dict(required=True, load_only=True, validate=validate.Length(min=8, max=256))


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))
    new_password = fields.String(**NEW_PASSWORD)


class PasswordResetSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=320))


class PasswordResetConfirmSchema(Schema):
    token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=128))
    new_password = fields.String(**NEW_PASSWORD)


class TokenSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class UserSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    role = fields.String()
    timezone = fields.String()
    digest_time = fields.String()
    locale = fields.String(metadata={"description": LOCALE_DESCRIPTION})
    created_at = fields.DateTime()


class MePatchSchema(Schema):
    timezone = fields.String(validate=validate_timezone)
    locale = LocaleTag(metadata={"description": LOCALE_DESCRIPTION})
    digest_time = fields.String(metadata={"description": "HH:MM, the user's local time"})

    @validates("digest_time")
    def _digest_time(self, value: str, **_kwargs) -> None:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValidationError("Use HH:MM, 24-hour (e.g. 07:30).")


# -- jobs ------------------------------------------------------------------------------


class JobSubmitSchema(Schema):
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    params = fields.Dict(load_default=dict)
    notify = fields.Boolean(metadata={"description": "Push to your devices when it finishes; default: the "
                                                     "job type's (on for agents, reports and export)."})


class JobErrorSchema(Schema):
    code = fields.String()
    message = fields.String()


class JobSchema(Schema):
    id = fields.UUID()
    type = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    params = fields.Dict()
    progress = fields.Integer()
    progress_message = fields.String(allow_none=True)
    result = fields.Raw(allow_none=True)
    error = fields.Nested(JobErrorSchema, allow_none=True)
    attempts = fields.Integer()
    created_at = fields.String()
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)


class PageQuerySchema(Schema):
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))


class JobListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    type = fields.String(validate=validate.Length(max=64))


JobPageSchema = page_schema(JobSchema, "JobPageSchema")


class JobWaitQuerySchema(Schema):
    wait = fields.Float(load_default=0, validate=validate.Range(min=0, max=30),
                        metadata={"description": "seconds to wait for a change (long-poll), at most 30"})


class JobTypeSchema(Schema):
    type = fields.String()
    queue = fields.String()
    summary = fields.String()
    params_schema = fields.Dict()
    available = fields.Boolean()
    admin_only = fields.Boolean()


JobTypeListSchema = page_schema(JobTypeSchema, "JobTypeListSchema")


# -- tasks -----------------------------------------------------------------------------


REPEAT_DESCRIPTION = (
    "One RFC 5545 RRULE value such as FREQ=WEEKLY;BYDAY=MO (no DTSTART, RDATE or EXDATE lines, at most "
    f"{repeat_rules.MAX_LENGTH} characters; FREQ DAILY, WEEKLY, MONTHLY or YEARLY), or null. Completing the "
    "task moves due_at and remind_at to the next occurrence.")


class RepeatRule(fields.String):
    """An RRULE value in its normal spelling; the checks that need no start time happen here."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return repeat_rules.normalize(super()._deserialize(value, attr, data, **kwargs))
        except repeat_rules.RepeatError as exc:
            raise ValidationError(str(exc)) from None


class TaskSchema(Schema):
    id = fields.UUID()
    title = fields.String()
    notes = fields.String()
    due_at = fields.String(allow_none=True)
    remind_at = fields.String(allow_none=True, metadata={"description": "When the reminder is pushed."})
    reminded_at = fields.String(allow_none=True, metadata={"description": "When it was pushed (or found missed)."})
    all_day = fields.Boolean()
    priority = fields.String(metadata={"enum": list(PRIORITIES)})
    tags = fields.List(fields.String())
    repeat = fields.String(allow_none=True, metadata={"description": REPEAT_DESCRIPTION})
    repeat_start = fields.String(allow_none=True, metadata={
        "description": "The rule's DTSTART, so COUNT and INTERVAL count from it across completions."})
    done = fields.Boolean()
    completed_at = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


TaskPageSchema = page_schema(TaskSchema, "TaskPageSchema")


class CompletionSchema(Schema):
    id = fields.UUID()
    task_id = fields.UUID()
    due_at = fields.String(allow_none=True, metadata={"description": "The occurrence that was completed."})
    next_due_at = fields.String(allow_none=True, metadata={"description": "Where due_at moved; null: done."})
    completed_at = fields.String()


CompletionPageSchema = page_schema(CompletionSchema, "CompletionPageSchema")


class Instant(fields.AwareDateTime):
    """An ISO 8601 datetime with an offset, loaded as UTC; a naive one is invalid."""

    # A day inside datetime's range, so it can be stored as UTC and shown in any zone.
    EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
    LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)
    default_error_messages = {"out_of_range": "Use a date between 0001-01-02 and 9999-12-30."}

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not self.EARLIEST <= moment <= self.LATEST:
            raise self.make_error("out_of_range")
        return moment.astimezone(timezone.utc)


class TaskListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(["open", "done", "all"]), load_default="all")
    due_before = Instant(metadata={"description": "due strictly before this instant"})
    due_after = Instant(metadata={"description": "due at or after this instant"})
    tag = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "case-insensitive"})


# \Z, not $: "$" also matches before a trailing newline.
TAG = validate.Regexp(r"[\w-]{1,64}\Z", error="Tags are 1-64 letters, digits, '-' or '_'.")


class TaskPatchSchema(Schema):
    title = fields.String(validate=[
        validate.Length(min=1, max=500),
        validate.Regexp(r"\s*\S", error="The title cannot be blank."),  # Regexp anchors at the start
    ])
    notes = fields.String(validate=validate.Length(max=20000))
    due_at = Instant(allow_none=True)
    remind_at = Instant(allow_none=True, metadata={"description": "Moving it re-arms a reminder already sent."})
    all_day = fields.Boolean()
    done = fields.Boolean()
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    tags = fields.List(fields.String(validate=TAG), validate=validate.Length(max=50))
    repeat = RepeatRule(allow_none=True, metadata={"description": REPEAT_DESCRIPTION + " Setting it (again) "
                                                   "starts the series at due_at (or now)."})


# -- Google: integrations, calendar, mail ------------------------------------------------


class IntegrationSchema(Schema):
    provider = fields.String()
    configured = fields.Boolean()
    connected = fields.Boolean()
    status = fields.String(metadata={"enum": ["connected", "reauth_required", "disconnected"]})
    scopes = fields.List(fields.String())
    connected_at = fields.String(allow_none=True)
    calendar_synced_at = fields.String(allow_none=True)
    mail_synced_at = fields.String(allow_none=True)
    last_error_code = fields.String(allow_none=True)


IntegrationListSchema = page_schema(IntegrationSchema, "IntegrationListSchema")


class AuthorizeRequestSchema(Schema):
    return_to = fields.String(validate=validate.Length(min=1, max=2048), metadata={
        "description": "where the browser goes after consent, with ?link_code=: one of OAUTH_RETURN_URLS "
                       "exactly (default: this API's /v1/integrations/google/linked page)"})


class LinkCompleteSchema(Schema):
    link_code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                              metadata={"description": "the link_code the callback added to return_to"})


class LinkedPageQuerySchema(Schema):
    link_code = fields.String(validate=validate.Length(max=128))
    error = fields.String(validate=validate.Length(max=64))


class AuthorizeSchema(Schema):
    url = fields.String(metadata={"description": "open it in a browser; Google redirects to the callback"})
    expires_in = fields.Integer()


class CallbackQuerySchema(Schema):
    code = fields.String(validate=validate.Length(max=2048))
    state = fields.String(validate=validate.Length(max=256))
    error = fields.String(validate=validate.Length(max=256))

    class Meta:
        unknown = EXCLUDE  # Google adds scope, authuser, prompt, ...


class DisconnectSchema(Schema):
    disconnected = fields.Boolean()
    revoked_at_google = fields.Boolean()


class EventListQuerySchema(PageQuerySchema):
    # "from" is a keyword: the field is loaded from the query's "from" into `start_from`.
    start_from = Instant(data_key="from", metadata={"description": "events ending after this instant"})
    to = Instant(metadata={"description": "events starting before this instant"})


class EventSchema(Schema):
    id = fields.UUID()
    summary = fields.String()
    description = fields.String()
    start = fields.String()
    end = fields.String()
    all_day = fields.Boolean()
    location = fields.String()
    attendees = fields.List(fields.Dict())
    status = fields.String()
    html_link = fields.String(allow_none=True)


EventPageSchema = page_schema(EventSchema, "EventPageSchema")


class MessageListQuerySchema(PageQuerySchema):
    label = fields.String(validate=validate.Length(min=1, max=128), metadata={"description": "a Gmail label id, e.g. INBOX"})
    q = fields.String(validate=validate.Length(min=1, max=200),
                      metadata={"description": "words in the subject, sender or snippet"})


class MessageSchema(Schema):
    id = fields.UUID()
    thread_id = fields.String()
    subject = fields.String()
    sender = fields.String(attribute="from", data_key="from")
    to = fields.List(fields.String())
    snippet = fields.String()
    labels = fields.List(fields.String())
    date = fields.String()


MessagePageSchema = page_schema(MessageSchema, "MessagePageSchema")


class PushAnswerSchema(Schema):
    queued = fields.Boolean(metadata={"description": "false: coalesced into a sync already queued or running"})
