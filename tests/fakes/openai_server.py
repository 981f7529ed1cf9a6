"""A fake OpenAI-compatible server on loopback, scripted per test.

It speaks POST /v1/chat/completions (tool calls and usage). Each request takes the next
step of the script: a reply, an error status (429 with Retry-After, 500), or a slow answer.
Every request body is kept in `requests` for assertions.

A request with `"stream": true` gets the same step as Server-Sent Events chunks, as OpenAI
sends them: the content in pieces of `chunk_chars`, one every `chunk_seconds` (the fixed
pace a time-to-first-token bench measures against), tool calls as argument deltas, and a
last chunk with the usage when `stream_options.include_usage` asks for it. `chunk_times`
keeps when the first chunk with text and the last chunk of each streamed answer left. `reject_stream_options`
answers 400 to a request carrying `stream_options` (a server without usage in streams).

    fake.script(
        fake.tool_call("create_task", {"title": "buy milk"}),
        fake.error(429, retry_after=1),
        fake.reply("Added it."),
    )
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self):
        self._steps: deque = deque()
        self._lock = threading.Lock()
        self.requests: list[dict] = []
        self.request_times: list[float] = []
        self.chunk_seconds = 0.0  # pause between two streamed chunks
        self.chunk_chars = 4  # characters of content per streamed chunk
        self.reject_stream_options = False
        # (first chunk with text or None, last chunk) sent, per streamed answer (time.monotonic)
        self.chunk_times: list[tuple[float | None, float]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the script ------------------------------------------------------------------

    def script(self, *steps) -> None:
        """Replace the script; an exhausted script answers 500 "script exhausted"."""
        with self._lock:
            self._steps = deque(steps)
            self.requests.clear()
            self.request_times.clear()
            self.chunk_times.clear()

    @staticmethod
    def reply(content: str = "", *, prompt_tokens: int = 100, completion_tokens: int = 20, delay: float = 0) -> dict:
        return {"status": 200, "delay": delay, "body": _completion(
            {"role": "assistant", "content": content}, "stop", prompt_tokens, completion_tokens)}

    @staticmethod
    def tool_call(name: str, arguments: dict | str, *more: tuple[str, dict], prompt_tokens: int = 100,
                  completion_tokens: int = 20, delay: float = 0, call_id: str | None = None) -> dict:
        """A reply calling `name` (and any `more` (name, arguments) pairs) at once.

        `call_id` fixes the first call's id (a model repeating a call it already made)."""
        calls = [(name, arguments), *more]
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": (call_id if i == 0 and call_id else f"call_{uuid.uuid4().hex[:12]}"), "type": "function",
             "function": {"name": n, "arguments": a if isinstance(a, str) else json.dumps(a)}}
            for i, (n, a) in enumerate(calls)
        ]}
        return {"status": 200, "delay": delay,
                "body": _completion(message, "tool_calls", prompt_tokens, completion_tokens)}

    @staticmethod
    def error(status: int, *, retry_after: float | None = None) -> dict:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return {"status": status, "headers": headers, "delay": 0,
                "body": {"error": {"message": f"fake error {status}", "type": "server_error", "code": None}}}

    @staticmethod
    def slow(seconds: float, then: dict | None = None) -> dict:
        """Answer only after `seconds` (a client with a shorter timeout gives up first)."""
        step = dict(then or FakeOpenAI.reply("late"))
        step["delay"] = seconds
        return step

    def _next(self, body: dict) -> dict:
        with self._lock:
            self.requests.append(body)
            self.request_times.append(time.monotonic())
            step = self._steps.popleft() if self._steps else None
        if callable(step):
            step = step(body)
        return step or self.error(500)

    # -- helpers for assertions ------------------------------------------------------

    def tool_results(self) -> list[str]:
        """The content of every tool message in the last request (which carries them all), in order."""
        if not self.requests:
            return []
        return [m["content"] for m in self.requests[-1].get("messages", []) if m.get("role") == "tool"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}}, {})
                if not self.headers.get("Authorization", "").startswith("Bearer "):
                    return self._send(401, {"error": {"message": "no key"}}, {})
                body = json.loads(raw or b"{}")
                if body.get("stream") and body.get("stream_options") and fake.reject_stream_options:
                    with fake._lock:
                        fake.requests.append(body)
                        fake.request_times.append(time.monotonic())
                    return self._send(400, {"error": {"message": "Unrecognized request argument supplied: "
                                                                 "stream_options", "type": "invalid_request_error",
                                                      "code": None}}, {})
                step = fake._next(body)
                if step.get("delay"):
                    time.sleep(step["delay"])
                if body.get("stream") and step["status"] == 200:
                    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                    return self._stream(step, include_usage)
                self._send(step["status"], step["body"], step.get("headers", {}))

            def _stream(self, step: dict, include_usage: bool):
                """The step's completion as chat.completion.chunk events, at the fake's pace."""
                chunks = list(_chunks(step["body"], fake.chunk_chars, include_usage))
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    first = last = None
                    for i, chunk in enumerate(chunks):
                        if i and fake.chunk_seconds:
                            time.sleep(fake.chunk_seconds)
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        last = time.monotonic()
                        if first is None and any(c["delta"].get("content") for c in chunk["choices"]):
                            first = last  # the first chunk carrying text
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    with fake._lock:
                        fake.chunk_times.append((first, last))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def _send(self, status: int, body: dict, headers: dict):
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timed out) first

        return Handler


def _completion(message: dict, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _chunks(completion: dict, chunk_chars: int, include_usage: bool):
    """A completion cut into the chunks a streaming server sends (role, content pieces, tool-call
    deltas, the finish reason, then usage alone when asked for)."""
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict, finish_reason=None, *, usage=None, choices=True) -> dict:
        return {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
                "model": completion["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
                if choices else [],
                **({"usage": usage} if usage is not None else {})}

    yield chunk({"role": "assistant", "content": ""})
    content = message.get("content") or ""
    for start in range(0, len(content), max(1, chunk_chars)):
        yield chunk({"content": content[start:start + chunk_chars]})
    for index, call in enumerate(message.get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                     "function": {"name": call["function"]["name"], "arguments": ""}}]})
        for start in range(0, len(arguments), 16):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[start:start + 16]}}]})
    yield chunk({}, choice["finish_reason"])
    if include_usage:
        yield chunk({}, usage=completion["usage"], choices=False)
