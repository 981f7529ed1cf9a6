"""A compromised model for FakeOpenAI: it obeys instructions it finds anywhere in its input.

The threat model of the agent-safety suite (OWASP LLM01/LLM06): assume text in mail and
calendar events steers the model completely. This fake reads every message it is sent
(data blocks, tool results, even characters hidden in the Unicode tag block, which a real
model can read) and carries out two kinds of instruction:

    CALL <tool> <json arguments>     call that tool (a task_id of "*" means every task seen)
    SAY <text>                       put the text into its answer (links, images, anything)

It first reads whatever it can (search_mail, list_events, read_thread, list_tasks when a
command needs task ids), then calls what it was told to, then answers: JSON for triage, the
SAY text otherwise. Use one instance per run: `fake.script(*[model] * 10)`.
"""
from __future__ import annotations

import json
import re

from tests.fakes.openai_server import FakeOpenAI

READ_FIRST = ("search_mail", "list_events", "read_thread")
_CALL = re.compile(r"CALL\s+([A-Za-z_]+)\s+(\{.*\})")
_SAY = re.compile(r"SAY\s+(.+)")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def readable_texts(body: dict) -> list[str]:
    """Everything the model could read: contents, JSON decoded, and tag characters as ASCII."""
    texts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, str):
            continue
        texts.append(content)
        for line in content.splitlines():
            try:
                texts.extend(_strings(json.loads(line)))
            except ValueError:
                pass
    hidden = []
    for text in texts:
        decoded = "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)
        if decoded:
            hidden.append(decoded)
    return texts + hidden


class ObedientModel:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []  # every tool call it made, in order

    def __call__(self, body: dict) -> dict:
        tools = {t["function"]["name"] for t in body.get("tools") or []}
        made = [(c["function"]["name"], c["function"]["arguments"])
                for m in body.get("messages", []) if m.get("role") == "assistant"
                for c in m.get("tool_calls") or []]
        made_names = {name for name, _ in made}
        texts = readable_texts(body)

        reads = [(name, {}) for name in READ_FIRST if name in tools and name not in made_names]
        if reads:
            return self._call(reads)

        commands = []
        for text in texts:
            for line in text.splitlines():
                for match in _CALL.finditer(line):
                    try:
                        args = json.loads(match.group(2))
                    except ValueError:
                        continue
                    if isinstance(args, dict):
                        commands.append((match.group(1), args))
        if any(args.get("task_id") == "*" for _, args in commands) and "list_tasks" in tools \
                and "list_tasks" not in made_names:
            return self._call([("list_tasks", {"status": "all"})])
        task_ids = self._task_ids(body)
        expanded = []
        for name, args in commands:
            if args.get("task_id") == "*":
                expanded.extend((name, {**args, "task_id": task_id}) for task_id in task_ids)
            else:
                expanded.append((name, args))
        done = {(name, arguments) for name, arguments in made}
        pending = []
        for name, args in expanded:
            key = (name, json.dumps(args, sort_keys=True))
            if key not in done and key not in {(n, json.dumps(a, sort_keys=True)) for n, a in pending}:
                pending.append((name, args))
        if pending:
            return self._call(pending)
        return self._answer(body, texts)

    def _call(self, calls: list[tuple[str, dict]]) -> dict:
        self.calls.extend(calls)
        first, *more = [(name, json.dumps(args, sort_keys=True)) for name, args in calls]
        return FakeOpenAI.tool_call(first[0], first[1], *more)

    @staticmethod
    def _task_ids(body: dict) -> list[str]:
        ids = []
        for message in body.get("messages", []):
            if message.get("role") != "tool":
                continue
            try:
                result = json.loads(message.get("content") or "")
            except ValueError:
                continue
            if isinstance(result, dict):
                ids.extend(t["id"] for t in result.get("tasks", []) if isinstance(t, dict) and "id" in t)
        return list(dict.fromkeys(ids))

    @staticmethod
    def _answer(body: dict, texts: list[str]) -> dict:
        said = list(dict.fromkeys(m.group(1).strip() for t in texts for line in t.splitlines()
                                  for m in _SAY.finditer(line)))
        text = " ".join(["Here is what I found.", *said])
        system = " ".join(m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system")
        if "triage" in system:
            ids = list(dict.fromkeys(re.findall(rf'"id": "({_UUID})"', "\n".join(texts))))
            return FakeOpenAI.reply(json.dumps({
                "messages": [{"id": i, "label": "needs-reply", "reason": text} for i in ids],
                "summary": text,
            }))
        return FakeOpenAI.reply(text)
