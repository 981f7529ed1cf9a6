"""A fake Google on loopback: OAuth (token, refresh, revoke), Calendar v3 events, Gmail v1.

The real google-auth, google-auth-oauthlib and google-api-python-client talk to it over
HTTP (GOOGLE_TOKEN_URI, GOOGLE_REVOKE_URI and GOOGLE_API_ROOT point here). Tests change
its state with the helper methods and plan faults with `fail(...)`.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "fake-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "fake-client-secret"
SCOPE = ("https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/gmail.readonly "
         "https://www.googleapis.com/auth/gmail.compose")


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    times: int
    reason: str | None = None
    after: bool = False  # do the work, then answer with the fault (a lost answer)
    delay: float = 0.0  # with status 0: answer normally, this many seconds late


def _now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class FakeGoogle:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self) -> None:
        """Forget every token, event, message, draft and planned fault."""
        with self.lock:
            self.challenges: dict[str, str] = {}  # code -> PKCE challenge
            self.granted: dict[str, str] = {}  # code -> the scopes the user left ticked
            self.consent_scopes: list[str] | None = None  # what the next consents grant; None: all asked
            self.refresh_tokens: dict[str, bool] = {}  # token -> revoked?
            self.access_tokens: dict[str, str] = {}  # access -> refresh
            self.events: dict[str, dict] = {}
            self.event_seq: dict[str, int] = {}
            self.seq = itertools.count(1)
            self.last_seq = 0
            self.min_sync_seq = 0
            self.messages: dict[str, dict] = {}
            self.history: list[tuple[int, dict]] = []
            self.history_id = 1000
            self.min_history_id = 0
            self.drafts: dict[str, dict] = {}
            self.faults: list[Fault] = []
            self.requests: list[tuple[str, str]] = []  # (method, path)
            self.token_requests: list[dict] = []
            self.channels: list[dict] = []  # push channels opened by events.watch
            self.in_flight = 0
            self.max_in_flight = 0  # the most requests ever served at once

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "FakeGoogle":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self) -> dict:
        """The settings that point our code at this fake."""
        return {
            "GOOGLE_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_REDIRECT_URI": "http://127.0.0.1:8000/v1/integrations/google/callback",
            "GOOGLE_AUTH_URI": f"{self.url}/o/oauth2/auth",
            "GOOGLE_TOKEN_URI": f"{self.url}/token",
            "GOOGLE_REVOKE_URI": f"{self.url}/revoke",
            "GOOGLE_API_ROOT": f"{self.url}/",
        }

    # -- OAuth helpers -----------------------------------------------------------------

    def consent(self, consent_url: str, scopes: list[str] | None = None) -> str:
        """Play the user clicking "Allow" on `consent_url` (with only `scopes` left ticked, when
        given): a code bound to its PKCE challenge."""
        query = parse_qs(urlsplit(consent_url).query)
        assert query["code_challenge_method"] == ["S256"], query
        code = "code-" + secrets.token_hex(8)
        with self.lock:
            self.challenges[code] = query["code_challenge"][0]
            self.granted[code] = " ".join(scopes or self.consent_scopes or query["scope"][0].split())
        return code

    def revoked(self) -> set[str]:
        """The refresh tokens revoked so far."""
        with self.lock:
            return {token for token, revoked in self.refresh_tokens.items() if revoked}

    def grant(self) -> tuple[str, str]:
        """A (refresh, access) token pair, as if issued at consent."""
        with self.lock:
            refresh = "1//rt-" + secrets.token_hex(12)
            access = "ya29.at-" + secrets.token_hex(12)
            self.refresh_tokens[refresh] = False
            self.access_tokens[access] = refresh
            return refresh, access

    def revoke_all(self) -> None:
        """The user removed our access in their Google account."""
        with self.lock:
            for token in self.refresh_tokens:
                self.refresh_tokens[token] = True
            self.access_tokens.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    # -- Calendar helpers --------------------------------------------------------------

    def _touch(self, event_id: str) -> None:
        self.last_seq = next(self.seq)
        self.event_seq[event_id] = self.last_seq

    def add_event(self, summary: str, start: str, end: str, **fields) -> dict:
        with self.lock:
            event_id = fields.pop("id", None) or secrets.token_hex(10)
            event = {
                "id": event_id, "status": "confirmed", "summary": summary,
                "start": {"dateTime": start}, "end": {"dateTime": end},
                "htmlLink": f"https://calendar.example/{event_id}", "updated": _now_rfc3339(), **fields,
            }
            self.events[event_id] = event
            self._touch(event_id)
            return event

    def update_event(self, event_id: str, **fields) -> None:
        with self.lock:
            self.events[event_id].update(fields, updated=_now_rfc3339())
            self._touch(event_id)

    def cancel_event(self, event_id: str) -> None:
        with self.lock:
            self.events[event_id]["status"] = "cancelled"
            self._touch(event_id)

    def expire_sync_tokens(self) -> None:
        with self.lock:
            self.min_sync_seq = self.last_seq + 1

    def notification_headers(self, state: str = "exists", channel: dict | None = None) -> dict:
        """The headers Google sends to a channel's address when the calendar changes."""
        channel = channel or self.channels[-1]
        return {"X-Goog-Channel-ID": channel["id"], "X-Goog-Channel-Token": channel["token"] or "",
                "X-Goog-Resource-ID": channel["resourceId"], "X-Goog-Resource-State": state,
                "X-Goog-Message-Number": "1"}

    # -- Gmail helpers -----------------------------------------------------------------

    def _record(self, **change) -> None:
        self.history_id += 1
        self.history.append((self.history_id, {"id": str(self.history_id), **change}))

    def add_message(self, subject: str, sender: str = "Ada <ada@example.com>", to: str = "me@example.com",
                    labels=("INBOX", "UNREAD"), snippet: str = "", thread_id: str | None = None) -> dict:
        with self.lock:
            message_id = secrets.token_hex(8)
            message = {
                "id": message_id, "threadId": thread_id or message_id, "labelIds": list(labels),
                "snippet": snippet or f"about {subject}",
                "internalDate": str(int(datetime.now(timezone.utc).timestamp() * 1000)),
                "payload": {"headers": [
                    {"name": "From", "value": sender}, {"name": "To", "value": to},
                    {"name": "Subject", "value": subject},
                ]},
            }
            self.messages[message_id] = message
            self._record(messagesAdded=[{"message": {"id": message_id, "threadId": message["threadId"],
                                                     "labelIds": list(labels)}}])
            return message

    def relabel(self, message_id: str, labels) -> None:
        with self.lock:
            message = self.messages[message_id]
            removed = [label for label in message["labelIds"] if label not in labels]
            message["labelIds"] = list(labels)
            ref = {"id": message_id, "threadId": message["threadId"], "labelIds": list(labels)}
            self._record(labelsRemoved=[{"message": ref, "labelIds": removed}])

    def delete_message(self, message_id: str) -> None:
        with self.lock:
            message = self.messages.pop(message_id)
            self._record(messagesDeleted=[{"message": {"id": message_id, "threadId": message["threadId"]}}])

    def expire_history(self) -> None:
        with self.lock:
            self.min_history_id = self.history_id + 1

    # -- faults ------------------------------------------------------------------------

    def fail(self, method: str, pattern: str, status: int, *, times: int = 1, reason: str | None = None,
             after: bool = False) -> None:
        """Answer the next `times` requests matching (method, path regex) with `status`."""
        with self.lock:
            self.faults.append(Fault(method, pattern, status, times, reason, after))

    def slow(self, method: str, pattern: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` matching requests normally, but `seconds` late."""
        with self.lock:
            self.faults.append(Fault(method, pattern, 0, times, delay=seconds))

    def count(self, method: str, pattern: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and re.search(pattern, p))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and re.search(fault.pattern, path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None


def _error_body(status: int, reason: str | None) -> dict:
    reason = reason or {429: "rateLimitExceeded", 410: "fullSyncRequired", 404: "notFound",
                        409: "duplicate", 401: "authError"}.get(status, "backendError")
    return {"error": {"code": status, "message": reason, "errors": [{"reason": reason, "domain": "global"}]}}


def _handler(fake: FakeGoogle):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        # -- plumbing ----------------------------------------------------------------

        def _send(self, status: int, body=None):
            data = json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self, method: str):
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            body = self._body()
            with fake.lock:
                fake.requests.append((method, path))
            fault = fake._take_fault(method, path)
            with fake.lock:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                if fault and fault.status == 0:
                    time.sleep(fault.delay)
                    fault = None
                return self._answer(method, path, query, body, fault)
            finally:
                with fake.lock:
                    fake.in_flight -= 1

        def _answer(self, method, path, query, body, fault):
            if fault and not fault.after:
                return self._send(fault.status, _error_body(fault.status, fault.reason))
            if path == "/token":
                status, answer = self._token(parse_qs(body.decode()) | self._basic_auth())
            elif path == "/revoke":
                status, answer = self._revoke(parse_qs(body.decode()) or query)
            else:
                if not self._authorized():
                    return self._send(401, _error_body(401, None))
                status, answer = self._api(method, path, query, json.loads(body) if body else {})
            if fault:
                return self._send(fault.status, _error_body(fault.status, fault.reason))
            return self._send(status, answer)

        def do_GET(self):
            if urlsplit(self.path).path == "/o/oauth2/auth":
                return self._consent_page()
            self._handle("GET")

        def _consent_page(self):
            """The browser opening the consent URL, and its user clicking "Allow": back to redirect_uri."""
            query = parse_qs(urlsplit(self.path).query)
            code = fake.consent(self.path)
            target = f"{query['redirect_uri'][0]}?{urlencode({'code': code, 'state': query['state'][0], 'scope': fake.granted[code]})}"
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            self._handle("POST")

        def _basic_auth(self) -> dict:
            """Client credentials sent as HTTP Basic auth (Google accepts them there or in the form)."""
            scheme, _, value = self.headers.get("Authorization", "").partition(" ")
            if scheme != "Basic":
                return {}
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
            from urllib.parse import unquote_plus

            return {"client_id": [unquote_plus(client_id)], "client_secret": [unquote_plus(secret)]}

        def _authorized(self) -> bool:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            with fake.lock:
                return scheme == "Bearer" and token in fake.access_tokens

        # -- OAuth -------------------------------------------------------------------

        def _token(self, form: dict):
            field = lambda name: (form.get(name) or [""])[0]  # noqa: E731
            with fake.lock:
                fake.token_requests.append({k: v[0] for k, v in form.items()})
                if field("client_id") != CLIENT_ID or field("client_secret") != CLIENT_SECRET:
                    return 401, {"error": "invalid_client"}
                if field("grant_type") == "authorization_code":
                    challenge = fake.challenges.pop(field("code"), None)
                    digest = hashlib.sha256(field("code_verifier").encode()).digest()
                    if challenge is None or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
                        return 400, {"error": "invalid_grant", "error_description": "Bad code or verifier."}
                    refresh, access = fake.grant()
                    return 200, {"access_token": access, "refresh_token": refresh, "expires_in": 3599,
                                 "scope": fake.granted.pop(field("code"), SCOPE), "token_type": "Bearer"}
                if field("grant_type") == "refresh_token":
                    refresh = field("refresh_token")
                    if fake.refresh_tokens.get(refresh, True):
                        return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                    access = "ya29.at-" + secrets.token_hex(12)
                    fake.access_tokens[access] = refresh
                    return 200, {"access_token": access, "expires_in": 3599, "scope": SCOPE, "token_type": "Bearer"}
            return 400, {"error": "unsupported_grant_type"}

        def _revoke(self, form: dict):
            token = (form.get("token") or [""])[0]
            with fake.lock:
                refresh = fake.access_tokens.get(token, token)
                if refresh not in fake.refresh_tokens:
                    return 400, {"error": "invalid_token"}
                fake.refresh_tokens[refresh] = True
                for access in [a for a, r in fake.access_tokens.items() if r == refresh]:
                    del fake.access_tokens[access]
            return 200, {}

        # -- APIs --------------------------------------------------------------------

        def _api(self, method: str, path: str, query: dict, body: dict):
            q = lambda name, default=None: (query.get(name) or [default])[0]  # noqa: E731
            with fake.lock:
                if match := re.fullmatch(r"/calendar/v3/calendars/primary/events", path):
                    if method == "POST":
                        return self._insert_event(body)
                    return self._list_events(q)
                if path == "/calendar/v3/calendars/primary/events/watch" and method == "POST":
                    channel = {"kind": "api#channel", "id": body["id"], "resourceId": "res-" + secrets.token_hex(6),
                               "resourceUri": f"{fake.url}/calendar/v3/calendars/primary/events",
                               "expiration": str(int((time.time() + 7 * 86400) * 1000))}
                    fake.channels.append({**channel, "token": body.get("token"), "address": body.get("address")})
                    return 200, channel
                if match := re.fullmatch(r"/calendar/v3/calendars/primary/events/([^/]+)", path):
                    event = fake.events.get(match.group(1))
                    return (200, event) if event else (404, _error_body(404, None))
                if path == "/gmail/v1/users/me/profile":
                    return 200, {"emailAddress": "me@example.com", "historyId": str(fake.history_id)}
                if path == "/gmail/v1/users/me/messages":
                    return 200, self._paged(sorted(fake.messages), q, "messages",
                                       lambda i: {"id": i, "threadId": fake.messages[i]["threadId"]})
                if match := re.fullmatch(r"/gmail/v1/users/me/messages/([^/]+)", path):
                    message = fake.messages.get(match.group(1))
                    return (200, message) if message else (404, _error_body(404, None))
                if path == "/gmail/v1/users/me/history":
                    return self._history(q)
                if path == "/gmail/v1/users/me/drafts":
                    if method == "POST":
                        return self._create_draft(body)
                    return 200, {"drafts": [{"id": d, "message": {"id": v["message"]["id"]}}
                                            for d, v in fake.drafts.items()]}
                if match := re.fullmatch(r"/gmail/v1/users/me/drafts/([^/]+)", path):
                    draft = fake.drafts.get(match.group(1))
                    return (200, draft) if draft else (404, _error_body(404, None))
            return 404, _error_body(404, None)

        def _paged(self, ids: list, q, key: str, shape):
            size = int(q("maxResults", "100"))
            offset = int(q("pageToken", "0") or 0)
            chunk = ids[offset:offset + size]
            answer = {key: [shape(i) for i in chunk]}
            if offset + size < len(ids):
                answer["nextPageToken"] = str(offset + size)
            return answer

        def _list_events(self, q):
            sync_token = q("syncToken")
            if sync_token:
                since = int(sync_token.removeprefix("st-"))
                if since < fake.min_sync_seq:
                    return 410, _error_body(410, None)
                ids = sorted(i for i, s in fake.event_seq.items() if s > since)
            else:
                lo, hi = q("timeMin"), q("timeMax")
                assert lo and hi, "a full list must be bounded"
                lo, hi = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in (lo, hi))
                ids = sorted(
                    i for i, e in fake.events.items() if e["status"] != "cancelled"
                    and datetime.fromisoformat(e["end"]["dateTime"]) > lo
                    and datetime.fromisoformat(e["start"]["dateTime"]) < hi
                )
            answer = self._paged(ids, q, "items", lambda i: fake.events[i])
            if "nextPageToken" not in answer:
                answer["nextSyncToken"] = f"st-{fake.last_seq}"
            return 200, answer

        def _insert_event(self, body: dict):
            event_id = body.get("id") or secrets.token_hex(10)
            if event_id in fake.events:
                return 409, _error_body(409, None)
            start, end = body["start"]["dateTime"], body["end"]["dateTime"]
            fields = {k: v for k, v in body.items() if k not in ("id", "summary", "start", "end")}
            return 200, fake.add_event(body["summary"], start, end, id=event_id, **fields)

        def _history(self, q):
            start = int(q("startHistoryId"))
            if start < fake.min_history_id:
                return 404, _error_body(404, None)
            records = [r for hid, r in fake.history if hid > start]
            size = int(q("maxResults", "100"))
            offset = int(q("pageToken", "0") or 0)
            answer = {"history": records[offset:offset + size], "historyId": str(fake.history_id)}
            if offset + size < len(records):
                answer["nextPageToken"] = str(offset + size)
            return 200, answer

        def _create_draft(self, body: dict):
            raw = base64.urlsafe_b64decode(body["message"]["raw"] + "==")
            parsed = message_from_bytes(raw)
            draft_id = "r-" + secrets.token_hex(6)
            message = {"id": secrets.token_hex(8), "threadId": body["message"].get("threadId", ""),
                       "labelIds": ["DRAFT"],
                       "payload": {"headers": [{"name": k, "value": v} for k, v in parsed.items()]},
                       "body": parsed.get_payload()}
            fake.drafts[draft_id] = {"id": draft_id, "message": message}
            return 200, {"id": draft_id, "message": {"id": message["id"], "threadId": message["threadId"],
                                                     "labelIds": ["DRAFT"]}}

    return Handler
