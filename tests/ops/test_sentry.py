"""Errors go to Sentry when SENTRY_DSN is set (a fake Sentry on loopback), nowhere when not."""
from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import brotli
import pytest
import sentry_sdk

from api import create_app
from tests.support import wait_until


class FakeSentry:
    """Takes envelopes as sentry-sdk posts them: POST /api/<project>/envelope/."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                # sentry-sdk compresses with brotli when the package is there (flask-compress
                # brings it), else with gzip; Sentry accepts both.
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                elif self.headers.get("Content-Encoding") == "br":
                    body = brotli.decompress(body)
                received.append((self.path, body.decode(errors="replace")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/42"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def fake_sentry():
    server = FakeSentry()
    yield server
    sentry_sdk.init(dsn=None)  # after the test this process reports to no one
    server.close()


def crashing_app(settings):
    app = create_app(settings)

    @app.get("/v1/test-explodes")
    def explode():
        raise RuntimeError("boom; refresh_token=r3fr3sh-s3cret")

    return app


def test_an_unhandled_error_reaches_sentry_without_its_secrets(settings, fake_sentry):
    app = crashing_app(settings.replace(sentry_dsn=fake_sentry.dsn))
    assert app.test_client().get("/v1/test-explodes", headers={"Authorization": "Bearer abc.def.ghi"}).status_code == 500
    sentry_sdk.flush(timeout=5)
    path, body = wait_until(lambda: fake_sentry.received and fake_sentry.received[0], timeout=10,
                            message="an envelope at the fake Sentry")
    assert path == "/api/42/envelope/"
    assert "RuntimeError" in body and "boom" in body
    assert "r3fr3sh-s3cret" not in body and "abc.def.ghi" not in body


def test_without_a_dsn_nothing_is_sent(settings, fake_sentry):
    sentry_sdk.init(dsn=None)
    app = crashing_app(settings.replace(sentry_dsn=""))
    assert app.test_client().get("/v1/test-explodes").status_code == 500
    sentry_sdk.flush(timeout=2)
    assert sentry_sdk.get_client().transport is None  # no client that could send
    assert fake_sentry.received == []


@pytest.mark.worker
def test_a_crashing_job_on_a_worker_reaches_sentry(settings, fake_sentry, user):
    """A worker of its own, on a broker of its own, so no other worker takes the job."""
    from bench.servers import ThrowawayRedis
    from shared.celery_app import make_celery
    from tests.factories import make_job
    from tests.support import WorkerProcess

    server = ThrowawayRedis().start()
    broker = server.url
    sender = make_celery(settings.replace(broker_url=broker))

    class SentryWorker(WorkerProcess):
        def ready(self) -> bool:
            return bool(sender.control.ping(destination=[self.hostname], timeout=0.5))

    worker = SentryWorker(env={"SENTRY_DSN": fake_sentry.dsn, "BROKER_URL": broker}, queues="maintenance",
                          concurrency=1).start()
    try:
        # Past validation (a row written directly): the body's float() raises ValueError.
        job = make_job(user, type="ops.ping", params={"sleep_seconds": "not-a-number"})
        sender.send_task("jobs.ops.ping", args=[str(job.id)], task_id=job.run_token, queue="maintenance")

        def crash_report():
            return next((body for _path, body in fake_sentry.received if "ValueError" in body), None)

        body = wait_until(crash_report, timeout=30, message="the crash at the fake Sentry")
        assert "not-a-number" in body and str(job.id) in body
    finally:
        worker.stop()
        server.destroy()
