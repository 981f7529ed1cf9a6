"""The TypeScript SDK (clients/typescript), built and tested against a live API on PostgreSQL + Redis.

Its own tests (node's test runner) are the mobile apps' view of the API: the README tour,
single-flight refresh under parallel requests and during a long-poll, idempotent retries,
typed errors. A second test holds the committed generated types to the running API.
"""
from __future__ import annotations

import re

import pytest

from tests.clients.npm import SDK, run
from tests.support import WorkerProcess

pytestmark = pytest.mark.worker

REGENERATE = (
    "clients/typescript/src/openapi.ts no longer matches the API's /openapi.json. Regenerate and commit it:\n"
    "    make run        # in another terminal (or any API at API_URL)\n"
    "    cd clients/typescript && npm run generate     # API_URL defaults to http://127.0.0.1:8000\n"
)


@pytest.fixture(scope="module")
def sdk_api(live_server, worker):
    """The live API, with a worker that leaves the reports queue alone, so a report job
    stays queued for as long as a test needs (the wait-with-refresh test cancels it)."""
    with worker.paused():
        own = WorkerProcess(queues="interactive,sync").start()
        run(SDK, "ci", "--no-audit", "--no-fund")
        yield live_server
        own.stop()


def test_the_sdk_builds_and_passes_its_tests_against_the_live_api(sdk_api):
    run(SDK, "run", "build")
    assert (SDK / "dist" / "index.js").is_file() and (SDK / "dist" / "index.d.ts").is_file()

    result = run(SDK, "test", env={"API_URL": sdk_api.url})

    summary = dict(re.findall(r"^# (pass|fail|tests) (\d+)$", result.stdout, re.M))
    assert summary.get("fail") == "0" and int(summary.get("pass", 0)) >= 8, result.stdout[-3000:]


def test_the_committed_types_are_what_the_api_serves(sdk_api, tmp_path):
    served = tmp_path / "openapi.ts"
    run(SDK, "run", "generate", "--", str(served), env={"API_URL": sdk_api.url})

    committed = (SDK / "src" / "openapi.ts").read_text()
    assert served.read_text() == committed, REGENERATE
