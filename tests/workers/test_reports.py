"""Reports run on a real worker: the daily digest (JSON + HTML) and the weekly review (JSON + chart)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared import db
from shared.models import CalendarEvent, MailMessage, utcnow
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


def test_the_weekly_review_counts_the_week_and_draws_a_chart(client, user, headers, worker):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    client.patch("/v1/me", headers=headers, json={"timezone": "Europe/Berlin"})
    berlin = ZoneInfo("Europe/Berlin")
    monday = datetime(2026, 3, 23, tzinfo=berlin)  # the week the clocks go forward (Sunday the 29th)
    make_task(user, title="a", created_at=monday + timedelta(hours=9))
    make_task(user, title="b", created_at=monday + timedelta(hours=10), done=True,
              completed_at=monday + timedelta(days=2, hours=11))
    make_task(user, title="late Sunday", created_at=datetime(2026, 3, 29, 23, 30, tzinfo=berlin))
    make_task(user, title="next week", created_at=datetime(2026, 3, 30, 0, 30, tzinfo=berlin))
    add(
        CalendarEvent(user_id=user.id, external_id="e1", summary="1:1", start_at=monday + timedelta(hours=14),
                      end_at=monday + timedelta(hours=15, minutes=30)),
        MailMessage(user_id=user.id, external_id="m1", date=monday + timedelta(days=4, hours=8)),
    )

    job = submit(client, headers, "report.weekly_review", {"week_start": "2026-03-23"})

    assert job["status"] == "succeeded", job
    days = job["result"]["days"]
    assert [d["date"] for d in days][0::6] == ["2026-03-23", "2026-03-29"]
    assert [d["tasks_created"] for d in days] == [2, 0, 0, 0, 0, 0, 1]
    assert days[2]["tasks_completed"] == 1 and days[4]["mail_received"] == 1
    assert days[0]["meeting_hours"] == 1.5
    assert job["result"]["totals"] == {"tasks_created": 3, "tasks_completed": 1, "mail_received": 1,
                                       "meeting_hours": 1.5}

    chart = client.get(f"/v1/jobs/{job['id']}/artifact?name=chart.png", headers=headers)
    assert chart.status_code == 200 and chart.mimetype == "image/png"
    assert chart.data.startswith(b"\x89PNG\r\n\x1a\n") and len(chart.data) > 5000
    numbers = client.get(f"/v1/jobs/{job['id']}/artifact?name=review.json", headers=headers)
    assert numbers.json["totals"] == job["result"]["totals"]
    assert {a["name"] for a in job["result"]["artifacts"]} == {"review.json", "chart.png"}
