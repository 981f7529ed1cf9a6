"""Live output of agent jobs: one Redis Stream per job, written by the worker, read by SSE.

    jobevents:{job_id}   stream of {type, data (JSON)}: token, tool, action, progress, attempt, done

Only job types with `live_output` write a stream; every other job's events are made from
its row when its wake-up arrives (api.resources.job_events), which keeps their worker's
cycle as cheap as before. Each append also publishes the job's wake-up, so one subscriber
per API process (api.live) hears every stream move without a Redis connection per client.

The stream is never trimmed while the job runs: a client resuming from any id it was given
gets exactly the rest. MAXLEN is only a guard above the most events one job can emit (a
token event holds 20 ms or 64 characters of text, so a run of at most its time limit emits
fewer than time_limit / 0.02 of them, plus its tools and proposals). `done` gives the
stream its TTL; a client after that gets the job's final state from the database.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time

import redis

from shared.jobs.registry import get_job_type
from shared.jobs.wakeups import channel
from shared.redis_clients import cache_redis

log = logging.getLogger(__name__)

MAXLEN = 100_000
RUNNING_TTL_SECONDS = 6 * 3600  # a stream whose job never finished (a worker lost for good)
FINISHED_TTL_SECONDS = 3600  # a finished job's replay, for clients that reconnect late
COALESCE_SECONDS = 0.02
COALESCE_CHARS = 64
_ID = re.compile(r"^(\d{1,15})-(\d{1,12})$")


def stream_key(job_id) -> str:
    return f"jobevents:{job_id}"


def live_output(type_name: str) -> bool:
    job_type = get_job_type(type_name)
    return bool(job_type and job_type.live_output)


def parse_id(value: str) -> tuple[int, int] | None:
    """A stream entry id as (ms, seq), or None when it is not one."""
    match = _ID.match(value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _entry(kind: str, data: dict) -> dict:
    return {"type": kind, "data": json.dumps(data, separators=(",", ":"), default=str)}


def queue_done(pipe, row) -> None:
    """Append `done` for a finished job of a live type to `pipe` (the status cache's own
    round trip, after the commit), and give its stream the finished TTL."""
    if row.status not in ("succeeded", "failed", "canceled") or not live_output(row.type):
        return
    data = {"status": row.status}
    if row.error_code:
        data["error"] = {"code": row.error_code, "message": row.error_message}
    key = stream_key(row.id)
    pipe.xadd(key, _entry("done", data), maxlen=MAXLEN, approximate=True)
    pipe.expire(key, FINISHED_TTL_SECONDS)


def read(job_id, after: str | None, count: int = 500) -> list[tuple[str, str, dict]]:
    """Entries after `after` (all from the start when None): [(id, type, data)]."""
    start = f"({after}" if after else "-"
    rows = cache_redis().xrange(stream_key(job_id), min=start, max="+", count=count)
    return [(_text(entry_id), _text(fields.get(b"type", b"")), _data(fields.get(b"data"))) for entry_id, fields in rows]


def first_id(job_id) -> str | None:
    rows = cache_redis().xrange(stream_key(job_id), count=1)
    return _text(rows[0][0]) if rows else None


def snapshot(job_id) -> tuple[str | None, dict, tuple | None]:
    """For a client that fell behind the stream's start: (the id the snapshot stands for, its data:
    the current attempt's text and proposals so far, and the `done` entry if the job ended)."""
    last, text, actions, done = None, [], [], None
    after = None
    while rows := read(job_id, after, count=1000):
        for entry in rows:
            entry_id, kind, data = entry
            after = entry_id
            if kind == "done":
                done = entry
                continue
            last = entry_id
            if kind == "token":
                text.append(data.get("text", ""))
            elif kind == "action":
                actions.append(data)
            elif kind == "attempt":
                text, actions = [], []
    return last, {"text": "".join(text), "actions": actions}, done


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _data(value) -> dict:
    try:
        data = json.loads(value or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class EventWriter:
    """The worker's appender for one job: tokens coalesced, every append one pipelined round
    trip (XADD, EXPIRE, the wake-up). Redis failing loses live output, never the job."""

    def __init__(self, job_id):
        self.job_id = job_id
        self.key = stream_key(job_id)
        self._buffer: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._text_sent = False

    def emit(self, kind: str, data: dict) -> None:
        """Append one event (after any text still buffered, so the order is the run's)."""
        with self._lock:
            entries = self._take_tokens()
            entries.append(_entry(kind, data))
            self._append(entries)

    def token(self, text: str) -> None:
        """Buffer a text delta; sent at 64 characters, or 20 ms after the first one buffered.
        The run's very first text goes at once: the wait for it is what a person notices."""
        if not text:
            return
        with self._lock:
            self._buffer.append(text)
            self._size += len(text)
            if self._size >= COALESCE_CHARS or not self._text_sent:
                self._text_sent = True
                self._append(self._take_tokens())
            elif self._timer is None:
                self._timer = threading.Timer(COALESCE_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        with self._lock:
            self._append(self._take_tokens())

    def close(self) -> None:
        self.flush()

    def _take_tokens(self) -> list[dict]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return []
        text = "".join(self._buffer)
        self._buffer, self._size = [], 0
        return [_entry("token", {"text": text})]

    def _append(self, entries: list[dict]) -> None:
        if not entries:
            return
        try:
            with cache_redis().pipeline(transaction=False) as pipe:
                for fields in entries:
                    pipe.xadd(self.key, fields, maxlen=MAXLEN, approximate=True)
                pipe.expire(self.key, RUNNING_TTL_SECONDS)
                pipe.publish(channel(self.job_id), b"1")
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("live output of job %s not written: %s", self.job_id, exc)


def now_ms() -> int:
    return int(time.time() * 1000)
