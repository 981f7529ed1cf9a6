"""Reports run on a real worker: the daily digest (JSON + HTML) and the weekly review (JSON + chart)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared import db
from shared.models import CalendarEvent, MailMessage, User, utcnow
from tests.factories import make_task
from tests.support import wait_for_job

pytestmark = pytest.mark.worker


def add(*rows):
    with db.session_scope() as session:
        session.add_all(rows)


def submit(client, headers, job_type, params=None):
    response = client.post("/v1/jobs", headers=headers, json={"type": job_type, "params": params or {}})
    assert response.status_code == 202, response.json
    return wait_for_job(client, response.json["id"], headers)


def test_the_daily_digest_lists_today_and_renders_html(client, user, other_user, headers, worker):
    now = utcnow()
    make_task(user, title="pay rent", due_at=now)
    make_task(user, title="file taxes", due_at=now - timedelta(days=3))
    make_task(user, title="done already", due_at=now - timedelta(days=1), done=True)
    make_task(user, title="next month", due_at=now + timedelta(days=40))
    make_task(other_user, title="someone else's", due_at=now)
    add(
        CalendarEvent(user_id=user.id, external_id="e1", summary="Dentist <3pm>", start_at=now,
                      end_at=now + timedelta(minutes=30)),
        CalendarEvent(user_id=user.id, external_id="e2", summary="cancelled", status="cancelled",
                      start_at=now, end_at=now + timedelta(minutes=30)),
        MailMessage(user_id=user.id, external_id="m1", subject="Lunch?", sender="bob@example.com",
                    labels=["INBOX", "UNREAD"], date=now - timedelta(hours=2)),
        MailMessage(user_id=user.id, external_id="m2", subject="Newsletter", sender="news@example.com",
                    labels=["INBOX"], date=now - timedelta(hours=2)),
    )

    job = submit(client, headers, "report.daily_digest", {"date": now.date().isoformat()})

    assert job["status"] == "succeeded", job
    result = job["result"]
    assert [t["title"] for t in result["tasks_due_today"]] == ["pay rent"]
    assert [t["title"] for t in result["tasks_overdue"]] == ["file taxes"]
    assert [e["summary"] for e in result["agenda"]] == ["Dentist <3pm>"]
    assert [m["subject"] for m in result["mail_needing_reply"]] == ["Lunch?"]
    assert result["ai_summary"] is None and result["ai_summary_status"] == "not_configured"

    html = client.get(f"/v1/jobs/{job['id']}/artifact", headers=headers)
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert b"Dentist &lt;3pm&gt;" in html.data and b"file taxes" in html.data  # escaped, not injected
    assert client.get(result["artifact_url"]).data == html.data  # the signed link, without auth
