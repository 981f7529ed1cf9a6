"""Fake push services and a webhook receiver on loopback, each checking what the real one checks.

- FakeFCM: an OAuth token endpoint that verifies the service account's signed JWT assertion
  (google-auth mints it from the file's own token_uri), and FCM HTTP v1 `messages:send`
  that wants that token. Tokens in `unregistered` answer 404 UNREGISTERED; `fail(503, ...)`
  scripts outages with Retry-After.
- FakeWebPush: a push service endpoint per subscription the test makes (`subscribe()`
  generates the browser's P-256 key and auth secret), which verifies the VAPID
  `Authorization: vapid t=..., k=...` JWT and decrypts the aes128gcm body with http_ece.
- FakeReceiver: a webhook endpoint that verifies Standard Webhooks signatures.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PROJECT = "fake-project"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Server:
    """A threaded HTTP server whose handler calls `self.handle(method, path, headers, body)`."""

    def __init__(self):
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, headers = server.handle("POST", self.path, self.headers, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, method, path, headers, body):
        raise NotImplementedError


class FakeFCM(_Server):
    def __init__(self):
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = "pushes@fake-project.iam.gserviceaccount.com"
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.access_tokens: set[str] = set()
            self.token_requests = 0
            self.messages: list[dict] = []  # accepted messages, with "at" (time.time())
            self.refused: list[dict] = []
            self.unregistered: set[str] = set()
            self.faults: deque = deque()
            self.delay = 0.0

    def write_credentials(self, path: Path) -> Path:
        """A service-account file whose token_uri is this fake (the private key is ours)."""
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        path.write_text(json.dumps({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "fake-key-1",
            "private_key": pem, "client_email": self.client_email, "client_id": "1",
            "token_uri": f"{self.url}/token",
        }))
        return path

    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        with self.lock:
            self.faults.extend([(status, retry_after)] * times)

    def sent_to(self, token: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if m["token"] == token]

    def handle(self, method, path, headers, body):
        if path == "/token":
            return self._token(body)
        if path != f"/v1/projects/{PROJECT}/messages:send":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND"}}, {}
        auth = headers.get("Authorization", "")
        with self.lock:
            if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
                return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}, {}
            fault = self.faults.popleft() if self.faults else None
        if self.delay:
            time.sleep(self.delay)
        if fault:
            status, retry_after = fault
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, {"error": {"code": status, "status": "UNAVAILABLE"}}, extra
        message = json.loads(body)["message"]
        token = message.get("token")
        with self.lock:
            if token in self.unregistered:
                self.refused.append(message)
                return 404, {"error": {"code": 404, "status": "NOT_FOUND", "details": [
                    {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}, {}
            self.messages.append({**message, "at": time.time()})
        return 200, {"name": f"projects/{PROJECT}/messages/{uuid.uuid4().hex}"}, {}

    def _token(self, body: bytes):
        form = parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}, {}
        try:
            # google-auth addresses the assertion to Google's token endpoint, wherever it posts it.
            claims = jwt.decode(form["assertion"][0], self.key.public_key(), algorithms=["RS256"],
                                audience=[f"{self.url}/token", "https://oauth2.googleapis.com/token"])
        except (jwt.InvalidTokenError, KeyError) as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}, {}
        if claims.get("iss") != self.client_email or FCM_SCOPE not in claims.get("scope", ""):
            return 400, {"error": "invalid_scope"}, {}
        token = "ya29.fake-" + uuid.uuid4().hex
        with self.lock:
            self.access_tokens.add(token)
            self.token_requests += 1
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}, {}


class Subscription:
    """A browser's push subscription: the keys only the browser (here, the test) holds."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = uuid.uuid4().bytes

    def as_json(self) -> dict:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}


class FakeWebPush(_Server):
    def __init__(self, vapid_public_key: str):
        super().__init__()
        self.vapid_public_key = vapid_public_key  # what GET /v1/devices/webpush-key gave the browser
        self.subscriptions: dict[str, Subscription] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.received: list[dict] = []  # decrypted payloads, with "subscription" and "at"
            self.refused: list[str] = []
            self.gone: set[str] = set()

    def subscribe(self) -> Subscription:
        sub_id = uuid.uuid4().hex
        subscription = Subscription(f"{self.url}/push/{sub_id}")
        self.subscriptions[sub_id] = subscription
        return subscription

    def received_by(self, subscription: Subscription) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["endpoint"] == subscription.endpoint]

    def handle(self, method, path, headers, body):
        sub_id = path.rsplit("/", 1)[-1]
        subscription = self.subscriptions.get(sub_id)
        if not path.startswith("/push/") or subscription is None or sub_id in self.gone:
            return 410, {"error": "gone"}, {}
        problem = self._check_vapid(headers.get("Authorization", ""))
        if problem:
            with self.lock:
                self.refused.append(problem)
            return 401, {"error": problem}, {}
        if headers.get("Content-Encoding") != "aes128gcm" or not headers.get("TTL"):
            return 400, {"error": "want Content-Encoding aes128gcm and a TTL"}, {}
        try:
            plain = http_ece.decrypt(body, private_key=subscription.key, auth_secret=subscription.auth,
                                     version="aes128gcm")
        except Exception as exc:  # noqa: BLE001 (any failure to decrypt is the sender's)
            return 400, {"error": f"cannot decrypt: {exc}"}, {}
        with self.lock:
            self.received.append({**json.loads(plain), "endpoint": subscription.endpoint, "at": time.time(),
                                  "topic": headers.get("Topic")})
        return 201, b"", {}

    def _check_vapid(self, authorization: str) -> str | None:
        if not authorization.startswith("vapid "):
            return "no vapid authorization"
        fields = dict(part.strip().split("=", 1) for part in authorization[6:].split(","))
        if fields.get("k") != self.vapid_public_key:
            return "not the server's VAPID key"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        try:
            claims = jwt.decode(fields.get("t", ""), public, algorithms=["ES256"], audience=self.url)
        except jwt.InvalidTokenError as exc:
            return f"bad VAPID JWT: {exc}"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return "VAPID sub must be mailto: or https:"
        return None


class FakeReceiver(_Server):
    """An integrator's endpoint: keeps each delivery, and whether its signature verified."""

    def __init__(self):
        super().__init__()
        self.secret: str | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.deliveries: list[dict] = []  # {"headers", "payload", "verified", "at"}
            self.faults: deque = deque()

    def fail(self, status: int, *, times: int = 1) -> None:
        with self.lock:
            self.faults.extend([status] * times)

    def verified(self) -> list[dict]:
        with self.lock:
            return [d for d in self.deliveries if d["verified"]]

    def handle(self, method, path, headers, body):
        from standardwebhooks import Webhook, WebhookVerificationError

        wanted = {name: headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        try:
            payload = Webhook(self.secret).verify(body, wanted)
            verified = True
        except (WebhookVerificationError, TypeError, ValueError):
            payload, verified = None, False
        with self.lock:
            self.deliveries.append({"headers": wanted, "payload": payload, "verified": verified, "at": time.time(),
                                    "path": path})
            fault = self.faults.popleft() if self.faults else None
        if fault:
            return fault, {"error": "scripted"}, {}
        return (200 if verified else 401), {"ok": verified}, {}
