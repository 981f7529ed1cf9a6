"""The operators' `assistant` command."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from shared.cli import main
from shared.models import utcnow
from tests.factories import load_job, make_job


def run(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_jobs_list_filters_and_shows_owner(user, other_user):
    mine = make_job(user, status="failed")
    make_job(other_user)

    result = run("jobs", "list", "--status", "failed")

    assert result.exit_code == 0
    assert str(mine.id) in result.output and user.email in result.output
    assert other_user.email not in result.output


def test_jobs_show_includes_internal_fields(user):
    job = make_job(user)

    shown = json.loads(run("jobs", "show", str(job.id)).output)

    assert shown["id"] == str(job.id)
    assert shown["run_token"] == job.run_token
    assert shown["queue"] == "interactive"


def test_jobs_show_unknown_job_fails_cleanly(user):
    result = CliRunner().invoke(main, ["jobs", "show", "00000000-0000-0000-0000-000000000000"])

    assert result.exit_code == 1
    assert "no job" in result.output


def test_jobs_cancel(user):
    job = make_job(user)

    assert run("jobs", "cancel", str(job.id)).exit_code == 0
    assert load_job(job.id).status == "canceled"


def test_jobs_sweep_reports_what_it_did(user):
    make_job(user, created_at=utcnow() - timedelta(hours=1), enqueued_at=utcnow() - timedelta(hours=1))

    report = json.loads(run("jobs", "sweep").output)

    assert report["resent"] == 1


def test_jobs_resend_gives_the_job_a_new_message(user):
    job = make_job(user)

    result = run("jobs", "resend", str(job.id))

    assert result.exit_code == 0 and "sent" in result.output
    row = load_job(job.id)
    assert row.run_token != job.run_token and row.enqueued_at is not None


# -- errors: one line, with an exit code that means something ---------------------------------

UNREACHABLE_DB = "postgresql://admin:hunter2@127.0.0.1:1/gone"
# One command of each group that needs the database, and the arguments it needs.
NEEDS_THE_DATABASE = [
    ("db", "current"),
    ("users", "create-admin", "ops@example.com", "--password", "long enough password"),
    ("jobs", "list"),
    ("backup", "list"),
    ("keys", "rotate"),
]
EVERY_GROUP = NEEDS_THE_DATABASE + [
    ("settings", "show"),
    ("smoke", "--api", "http://127.0.0.1:1"),
    ("flower",),
    ("run",),
    ("embedded-redis",),
]


def failed(*args, **env):
    """`assistant ARGS` under ENV, as an operator's shell would run it: exit code and output."""
    from tests.support import environment

    with environment(env):
        result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize("args", NEEDS_THE_DATABASE, ids=lambda a: " ".join(a[:2]))
def test_an_unreachable_database_is_one_line_exit_69_naming_the_url_without_its_password(args):
    code, output = failed(*args, DATABASE_URL=UNREACHABLE_DB)
    assert code == 69, output
    assert output.count("\n") == 0 and "Traceback" not in output
    assert "127.0.0.1:1/gone" in output and "hunter2" not in output


@pytest.mark.parametrize("args", EVERY_GROUP, ids=lambda a: " ".join(a[:2]))
def test_every_command_refuses_a_setting_that_cannot_work_exit_78(args):
    code, output = failed(*args, WORKER_CONCURRENCY="-1")
    assert code == 78, output
    if args[0] == "settings":  # shows every value first: it is how an operator finds the problem
        output = output.splitlines()[-1]
    # `run` and `flower` start processes, and say so as the processes do.
    starts = {"run": "assistant run refuses to start: ", "flower": "flower refuses to start: "}.get(args[0], "")
    assert output == f"Error: {starts}WORKER_CONCURRENCY='-1' must be positive"


def test_a_url_that_is_not_one_is_a_configuration_error_not_a_traceback():
    code, output = failed("jobs", "list", DATABASE_URL="notaurl")
    assert code == 78
    assert output.startswith("Error: DATABASE_URL='notaurl' must start with postgres://")


def test_a_refusal_is_exit_1_and_usage_is_exit_2(user):
    job = make_job(user, status="succeeded")
    code, output = failed("jobs", "cancel", str(job.id))
    assert (code, output) == (1, "Error: The job already finished with status 'succeeded'.")
    code, output = failed("jobs", "show", "not-a-uuid")
    assert code == 2 and "not-a-uuid" in output


def test_create_admin_on_an_existing_user_asks_before_changing_their_password(user):
    from shared.db import session_scope
    from shared.models import User
    from shared.passwords import verify_password

    result = CliRunner().invoke(main, ["users", "create-admin", user.email], input="n\n")
    assert result.exit_code == 1 and "already exists: make them an admin and change their password?" in result.output
    result = run("users", "create-admin", user.email, "--password", "a new password")
    assert result.exit_code == 0 and "their password was changed" in result.output
    with session_scope() as session:
        changed = session.get(User, user.id)
        assert changed.role == "admin" and verify_password(changed.password_hash, "a new password")


def test_a_database_without_tables_says_to_migrate_exit_78(tmp_path):
    code, output = failed("jobs", "list", DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert code == 78 and output.count("\n") == 0
    assert "has no tables yet" in output and "assistant db upgrade" in output
