"""The embedded Redis outlives the processes that use it when `make run` stops them all at once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from tests.support import ROOT, free_port, wait_until

pytestmark = pytest.mark.fast  # its own Redis; no PostgreSQL, no worker


def test_stopped_it_serves_until_its_clients_have_left(tmp_path):
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "shared.cli", "embedded-redis", "--port", str(port)], cwd=ROOT,
                              env=env, start_new_session=True)
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        wait_until(lambda: _answers(client), timeout=30, message="the embedded Redis to answer")

        os.killpg(server.pid, signal.SIGTERM)  # as honcho stops a process: its whole group
        time.sleep(1.0)
        assert client.ping() and server.poll() is None  # a worker still connected: still serving

        client.close()
        assert server.wait(timeout=10) == 0
        assert not _answers(redis.Redis(port=port, socket_timeout=1))
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False
