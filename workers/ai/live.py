"""An agent run's live output: text deltas through the stream cleaner into the job's events.

The cleaner has the protocol of the output cleaning (`feed(delta) -> str` what may be shown
now, `finish() -> str` what it held back); `stream_cleaner()` is the one place that picks it,
so the text a client sees live is cleaned exactly like the stored answer.
"""
from __future__ import annotations

from typing import Protocol

from shared.jobs.events import EventWriter


class StreamCleaner(Protocol):
    def feed(self, delta: str) -> str: ...

    def finish(self) -> str: ...


class PassThrough:
    """A cleaner that lets every delta through as it came."""

    def feed(self, delta: str) -> str:
        return delta

    def finish(self) -> str:
        return ""


def stream_cleaner() -> StreamCleaner:
    """A fresh cleaner for one model answer."""
    return PassThrough()


class LiveOutput:
    """Tokens, tools, proposals, progress and attempts of one agent run, as job events."""

    def __init__(self, job_id, *, attempt: int):
        self.writer = EventWriter(job_id)
        self._cleaner: StreamCleaner | None = None
        self._actions_sent = 0
        if attempt > 1:
            # A retry started: clients drop the text of the attempt before.
            self.writer.emit("attempt", {"attempt": attempt})

    def delta(self, text: str) -> None:
        if self._cleaner is None:
            self._cleaner = stream_cleaner()
        self.writer.token(self._cleaner.feed(text))

    def answer_ended(self) -> None:
        """One model answer is complete: let out what the cleaner held, send the text now."""
        if self._cleaner is not None:
            self.writer.token(self._cleaner.finish())
            self._cleaner = None
        self.writer.flush()

    def progress(self, percent: int, message: str | None) -> None:
        self.writer.emit("progress", {"progress": percent, "message": message})

    def tool(self, phase: str, name: str, message: str) -> None:
        self.writer.emit("tool", {"phase": phase, "name": name, "message": message})

    def actions(self, proposed: list[dict]) -> None:
        """Send the proposals not sent yet (approvable once `done: succeeded` arrives)."""
        for action in proposed[self._actions_sent:]:
            self.writer.emit("action", {"action_id": action["action_id"], "type": action["type"],
                                        "summary": action["summary"]})
        self._actions_sent = len(proposed)

    def close(self) -> None:
        self.writer.close()
