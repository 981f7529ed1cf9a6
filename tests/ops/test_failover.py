"""The standby failover drill of ops/RUNBOOK.md ("PostgreSQL failover"), against real clusters.

A throwaway primary with a synchronous streaming standby (`pg_basebackup -R`, the primary's
synchronous_standby_names='*' and synchronous_commit=remote_apply), the api (gunicorn) and a
real Celery worker on it through a TCP proxy the test controls, quick adds submitted over
HTTP in a loop. Then the primary's postmaster is SIGKILLed, the runbook's block promotes the
standby, and the proxy moves to it. The proxy stands in for a DNS name or virtual IP: new
connections go to the standby; old client sockets are left half-open, as a moved address
leaves them (see Address). Free ports, temporary directories and a Redis of its own: two
sessions on one machine never clash, and the suite's worker never takes these jobs.
"""
from __future__ import annotations

import os
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

import psycopg2
import pytest
import requests
from sqlalchemy.exc import DBAPIError, InterfaceError, PendingRollbackError

from bench.servers import ThrowawayPostgres, ThrowawayRedis, as_postgres, pg_bin, query
from shared.db import KEEPALIVES
from shared.migrate import upgrade
from tests.ops.runbook import run_block
from tests.support import ServerProcess, WorkerProcess, auth_headers, create_user, environment, wait_until

READY_WITHIN = 30  # seconds after the promotion, without a restart
BEFORE_KILL = 12  # jobs acknowledged with 202 before the kill, at least
MAX_SUBMISSIONS = 400
CLIENTS = 3  # submission loops at once
# Between the kill and the promotion: a failover manager's (or an operator's) time to decide
# the primary is gone, which is when submissions are refused.
DETECTION_SECONDS = 12


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a reset, as from a host that knows no such connection."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Address:
    """The address DATABASE_URL names (a DNS name or virtual IP), as a TCP proxy on a free port.

    `cut()` is the primary's host dying: nothing more is relayed on any connection, no FIN,
    no reset; data sent is swallowed unanswered and a new connection is held without an answer
    (libpq's connect_timeout ends it). The proxy's kernel acknowledges what a dead host would
    not, so the proxy plays the client's kernel giving up: a socket with data unanswered for
    the pool's tcp_user_timeout, or idle through its keepalive probes, is reset.
    `move(port)` is the address moving to another host: new connections go there; an old
    socket is left half-open, and the host now holding the address answers whatever reaches
    it on one with a reset: data the client sends (or sent unanswered while the host was
    dead, which its kernel retransmits), and the first keepalive probe after the pool's idle
    time (which this proxy's own kernel would otherwise answer).
    """

    def __init__(self, port: int):
        self.target: int | None = port
        self.moved_at: float | None = None
        self.idle = KEEPALIVES["keepalives_idle"]
        self.dead_after = self.idle + KEEPALIVES["keepalives_interval"] * KEEPALIVES["keepalives_count"]
        self.user_timeout = KEEPALIVES["tcp_user_timeout"] / 1000
        self.seen: dict[socket.socket, float] = {}  # a relayed client's last traffic, either way
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.peer: dict[socket.socket, socket.socket] = {}  # both directions of each relayed connection
        self.old: dict[socket.socket, dict] = {}  # client sockets no longer relayed: last activity, unanswered
        self.clients: set[socket.socket] = set()  # the clients' ends of relayed connections
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="failover-address", daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/assistant"

    def cut(self) -> None:
        with self.lock:
            self.target = None
            for client in [c for c in self.peer if self._is_client(c)]:
                self._orphan(client)

    def move(self, port: int) -> None:
        with self.lock:
            self.target = port
            self.moved_at = time.monotonic()
            for client in list(self.peer):
                if self._is_client(client):
                    self._orphan(client)

    def close(self) -> None:
        self.stopping = True
        self.thread.join(timeout=5)
        for sock in [*self.peer, *self.old]:
            sock.close()
        self.listener.close()

    # -- the loop ---------------------------------------------------------------------------

    def _is_client(self, sock: socket.socket) -> bool:
        return sock in self.clients

    def _orphan(self, client: socket.socket) -> None:
        upstream = self.peer.pop(client)
        self.peer.pop(upstream, None)
        self.clients.discard(client)
        self.selector.unregister(upstream)
        upstream.close()  # to the dead server: nothing of it reaches the client
        self.old[client] = {"last": self.seen.pop(client, time.monotonic()), "unanswered": None}

    def _run(self) -> None:
        while not self.stopping:
            for key, _ in self.selector.select(timeout=0.2):
                with self.lock:
                    self._ready(key.fileobj)
            with self.lock:
                self._expire()

    def _ready(self, sock: socket.socket) -> None:
        if sock is self.listener:
            self._accept()
            return
        if sock not in self.peer and sock not in self.old:
            return  # dropped earlier in this round
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if sock in self.old:
            self._old_data(sock, data)
            return
        other = self.peer[sock]
        if not data:
            for end in (sock, other):
                self.selector.unregister(end)
                self.peer.pop(end, None)
                self.clients.discard(end)
                self.seen.pop(end, None)
                end.close()
            return
        self.seen[sock if sock in self.clients else other] = time.monotonic()
        try:
            other.sendall(data)
        except OSError:
            pass

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        if self.target is None:  # a dead host: no answer at all
            self.selector.register(client, selectors.EVENT_READ)
            self.old[client] = {"last": time.monotonic(), "unanswered": None}
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
        except OSError:
            reset(client)  # the server's port is closed: refused
            return
        upstream.settimeout(None)
        self.peer[client], self.peer[upstream] = upstream, client
        self.clients.add(client)
        self.selector.register(client, selectors.EVENT_READ)
        self.selector.register(upstream, selectors.EVENT_READ)

    def _old_data(self, client: socket.socket, data: bytes) -> None:
        state = self.old[client]
        if not data:  # the client closed it
            self._drop(client, reset_it=False)
        elif self.moved_at is not None and self.target is not None:
            self._drop(client, reset_it=True)  # the address's new holder knows no such connection
        elif state["unanswered"] is None:
            state["unanswered"] = time.monotonic()  # into a dead host

    def _expire(self) -> None:
        now = time.monotonic()
        for client, state in list(self.old.items()):
            moved = self.moved_at is not None and self.target is not None
            unanswered = state["unanswered"]
            if moved:
                if unanswered is not None or now >= max(state["last"] + self.idle, self.moved_at):
                    self._drop(client, reset_it=True)
            elif (unanswered is not None and now >= unanswered + self.user_timeout) or now >= state["last"] + self.dead_after:
                self._drop(client, reset_it=True)  # tcp_user_timeout, or keepalive probes unanswered: the client gives up

    def _drop(self, client: socket.socket, *, reset_it: bool) -> None:
        self.old.pop(client)
        self.selector.unregister(client)
        reset(client) if reset_it else client.close()


class Submitter:
    """Quick adds over HTTP in CLIENTS loops (bounded in count and time), each answer recorded."""

    def __init__(self, url: str, headers: dict):
        self.url, self.headers = url, headers
        self.answers: list[dict] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, name=f"submitter-{i}", daemon=True) for i in range(CLIENTS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=45)

    def _run(self) -> None:
        deadline = time.monotonic() + 90
        while not self.stop.is_set() and len(self.answers) < MAX_SUBMISSIONS and time.monotonic() < deadline:
            sent = time.monotonic()
            answer = {"sent": sent}
            try:
                response = requests.post(f"{self.url}/v1/jobs", headers=self.headers, timeout=40,
                                         json={"type": "tasks.quick_add", "params": {"text": "water the plants"}})
                answer.update(status=response.status_code, retry_after=response.headers.get("Retry-After"),
                              body=response.text[:300])
                if response.status_code == 202:
                    answer["job"] = response.json()["id"]
            except requests.RequestException as exc:
                answer.update(status=None, body=repr(exc))
            answer["answered"] = time.monotonic()
            self.answers.append(answer)
            time.sleep(0.3)  # about 10 a second in all: the worker keeps up, no user cap is reached

    def accepted(self, *, before: float | None = None) -> list[str]:
        return [a["job"] for a in self.answers if a.get("status") == 202 and (before is None or a["answered"] < before)]


@pytest.fixture(scope="module")
def pair():
    """A primary with a synchronous standby: a commit is acknowledged once the standby applied it."""
    try:
        pg_bin("pg_basebackup")
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL's server binaries are missing ({exc})")
    base = {"fsync": "off", "max_connections": "100"}
    primary = ThrowawayPostgres(settings={**base, "wal_level": "replica", "max_wal_senders": "5"}).init()
    standby = ThrowawayPostgres(settings={**base, "hot_standby": "on"})
    try:
        # In postgresql.auto.conf, as an operator sets them: the standby's copy inherits them.
        query(primary.port, "ALTER SYSTEM SET synchronous_standby_names = '*'")
        query(primary.port, "ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
        query(primary.port, "SELECT pg_reload_conf()")
        subprocess.run(as_postgres([pg_bin("pg_basebackup"), "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
                                    "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]),
                       check=True, capture_output=True, timeout=120)
        standby.start()
        wait_until(lambda: query(primary.port, "SELECT sync_state FROM pg_stat_replication") == [("sync",)],
                   timeout=20, message="the standby to stream synchronously")
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


def postmaster_pid(cluster: ThrowawayPostgres) -> int:
    return int((cluster.data / "postmaster.pid").read_text().splitlines()[0])


@pytest.mark.worker
@pytest.mark.truncate
def test_a_failover_loses_no_acknowledged_job_and_answers_503_meanwhile(pair, record_property):
    primary, standby = pair
    broker = ThrowawayRedis().start()
    address = Address(primary.port)
    processes: list = []
    submitter = None
    try:
        with environment({"DATABASE_URL": address.url(), "REDIS_URL": broker.url}):
            upgrade()
            user = create_user("failover@example.com")
            headers = auth_headers(user)
            operator = auth_headers(create_user("operator@example.com", role="admin"))  # ops.ping is theirs
            server = ServerProcess().start()
            processes.append(server)
            processes.append(WorkerProcess(queues="interactive,maintenance", concurrency=3).start())

            submitter = Submitter(server.url, headers)
            submitter.start()
            wait_until(lambda: len(submitter.accepted()) >= BEFORE_KILL, timeout=30, message="jobs to flow")
            # A job running at the kill (a ping sleeping in one-second steps, writing its progress).
            running = requests.post(f"{server.url}/v1/jobs", headers=operator, timeout=10,
                                    json={"type": "ops.ping", "params": {"sleep_seconds": 4}})
            assert running.status_code == 202, running.text
            ping = running.json()["id"]
            wait_until(lambda: query(primary.port, f"SELECT progress > 0 FROM jobs WHERE id = '{ping}'") == [(True,)],
                       timeout=15, message="the ping to run")

            address.cut()  # the primary's host dies: no FIN, no reset, nothing
            os.kill(postmaster_pid(primary), signal.SIGKILL)
            killed = time.monotonic()
            time.sleep(DETECTION_SECONDS)

            promoted_run = run_block("tests/ops/test_failover.py", "promote-standby",
                                     values={"PGHOST": "127.0.0.1", "PGPORT": str(standby.port)}, timeout=90)
            assert promoted_run.returncode == 0, promoted_run.stderr
            assert promoted_run.stdout.split() == ["t", "t", "f"], promoted_run.stdout  # promoted, reloaded, primary
            promoted = time.monotonic()
            address.move(standby.port)
            moved = time.monotonic()

            def ready() -> bool:
                try:
                    return requests.get(f"{server.url}/ready", timeout=10).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(ready, timeout=READY_WITHIN, interval=0.5, message="/ready to answer 200 after the promotion")
            ready_after = time.monotonic() - promoted
            # A few more submissions after the recovery, then the loop stops.
            wait_until(lambda: len(submitter.accepted()) >= len(submitter.accepted(before=promoted)) + 5,
                       timeout=30, message="submissions to be accepted again")
            submitter.finish()

            acknowledged = submitter.accepted(before=killed)
            everything = submitter.accepted()
            ids = ", ".join(f"'{job}'" for job in [*everything, ping])

            def settled():
                rows = query(standby.port, f"SELECT id::text, status FROM jobs WHERE id IN ({ids})")
                return rows if all(status in ("succeeded", "failed", "canceled") for _, status in rows) else None

            wait_until(settled, timeout=45, interval=0.5, message="every accepted job to finish")
            status = dict(query(standby.port, f"SELECT id::text, status FROM jobs WHERE id IN ({ids})"))
            ping_attempts = query(standby.port, f"SELECT attempts FROM jobs WHERE id = '{ping}'")[0][0]
            made = dict(query(standby.port, "SELECT source_job_id::text, count(*) FROM tasks "
                                            f"WHERE source_job_id IN ({ids}) GROUP BY 1"))
    finally:
        if submitter is not None:
            submitter.stop.set()
        for process in reversed(processes):
            process.stop()
        address.close()
        broker.destroy()

    lost = [job for job in acknowledged if status.get(job) != "succeeded" or made.get(job) != 1]
    answered_after_kill = sorted((a for a in submitter.answers if a["answered"] >= killed), key=lambda a: a["sent"])
    back = next((a["answered"] for a in answered_after_kill if a["sent"] >= killed and a.get("status") == 202), None)
    assert back is not None, "no submission was accepted after the kill"
    outage = back - killed
    record_property("failover_outage_seconds", round(outage, 1))
    record_property("failover_back_after_move_seconds", round(back - moved, 1))
    record_property("failover_ready_after_promotion_seconds", round(ready_after, 1))
    record_property("failover_lost_jobs", len(lost))
    print(f"\nfailover drill: {len(acknowledged)} jobs acknowledged before the kill, {len(lost)} lost; "
          f"submissions refused for {outage:.1f} s after the kill (accepted again {back - moved:.1f} s after the move, "
          f"{promoted - killed - DETECTION_SECONDS:.1f} s promoting); /ready 200 {ready_after:.1f} s after the promotion; "
          f"{sum(1 for a in answered_after_kill if a.get('status') == 503)} answered 503 meanwhile")

    assert len(acknowledged) >= BEFORE_KILL
    # The job running at the kill lost its connection, was retried and finished.
    assert status[ping] == "succeeded" and ping_attempts >= 2, (status[ping], ping_attempts)
    assert lost == [], f"acknowledged jobs lost or run twice: {[(j, status.get(j), made.get(j)) for j in lost]}"
    # Every accepted job, acknowledged in the outage or after it too, made its task once.
    assert all(status[job] == "succeeded" and made.get(job) == 1 for job in everything)
    refused = [a for a in submitter.answers if a.get("status") != 202]
    assert refused, "the drill saw no outage: the kill did not reach the stack"
    assert all(a.get("status") == 503 and a.get("retry_after") for a in refused), [
        (a.get("status"), a.get("body")) for a in refused if a.get("status") != 503 or not a.get("retry_after")]
    assert ready_after < READY_WITHIN


@pytest.mark.fast
@pytest.mark.parametrize("error", [
    # A socket the drill's moved address reset, found dead on a second use in the same request:
    InterfaceError("SELECT 1", {}, psycopg2.InterfaceError("connection already closed")),
    # A session whose connection died mid-transaction, used again before its rollback:
    PendingRollbackError("Can't reconnect until invalid transaction is rolled back."),
    DBAPIError("COMMIT", {}, psycopg2.DatabaseError("SSL SYSCALL error: EOF detected"), connection_invalidated=True),
], ids=["closed", "pending-rollback", "invalidated"])
def test_a_connection_lost_under_a_request_is_a_503_with_retry_after(settings, error):
    from api import create_app

    app = create_app(settings)

    @app.get("/v1/test-connection-lost")
    def lost():
        raise error

    response = app.test_client().get("/v1/test-connection-lost")

    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.json["code"] == "unavailable" and response.headers["Retry-After"]
