"""The operators' `assistant` command."""
from __future__ import annotations

import json
from datetime import timedelta

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
