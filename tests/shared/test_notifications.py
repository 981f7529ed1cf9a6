"""Recording what to push and deliver: once per device and event, only on channels with keys."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from shared import db
from shared.models import Device, NotificationSend
from shared.notifications import emit


def add(user, platform):
    with db.session_scope() as session:
        session.add(Device(user_id=user.id, platform=platform, token=uuid.uuid4().hex, token_hash=uuid.uuid4().hex))


def recorded() -> list[NotificationSend]:
    with db.session_scope() as session:
        return session.scalars(select(NotificationSend)).all()


def test_an_event_is_recorded_once_per_device_with_string_ids(user, monkeypatch, tmp_path):
    from shared.settings import get_settings

    monkeypatch.setenv("FCM_CREDENTIALS_FILE", str(tmp_path / "fcm.json"))
    get_settings.cache_clear()
    try:
        add(user, "fcm")
        add(user, "webpush")  # no VAPID key here: nothing is recorded for it
        task_id = uuid.uuid4()
        for _ in range(2):  # a producer that runs twice (two beats, a retried job)
            with db.session_scope() as session:
                emit(session=session, user_id=user.id, event_key=f"task.reminder:{task_id}", title="t",
                     data={"task_id": task_id, "count": 3, "none": None})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    [send] = recorded()
    assert send.channel == "fcm" and send.status == "pending"
    assert send.data == {"task_id": str(task_id), "count": "3"}


def test_no_push_keys_record_nothing(user):
    add(user, "fcm")
    with db.session_scope() as session:
        emitted = emit(session=session, user_id=user.id, event_key="x", title="t")
    assert not emitted and recorded() == []
