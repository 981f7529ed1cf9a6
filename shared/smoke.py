"""The post-deploy smoke test (`assistant smoke --api URL`): what a user's first minute does.

Health, readiness, a sign-in, and a quick add long-polled to its end: every part of the
platform (api, database, broker, a worker) has to work for it to pass. It talks to the api
over HTTP only, like an app; the database is touched only to create the smoke account on
first use, where this command can reach it.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import requests

from shared.settings import Settings

REQUEST_TIMEOUT = 10


class SmokeFailed(Exception):
    """A step failed; the message says which and why."""


@dataclass
class Step:
    name: str
    seconds: float
    detail: str = ""


def _json(response: requests.Response) -> dict:
    try:
        return response.json()
    except ValueError:
        return {}


def _describe(response: requests.Response) -> str:
    body = _json(response)
    message = body.get("message") or response.text[:200]
    return f"{response.status_code} {body.get('code', '')} {message}".strip()


def ensure_account(settings: Settings) -> str:
    """Create the smoke account when it does not exist yet; says what it did."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from shared.db import session_scope
    from shared.models import User
    from shared.passwords import hash_password

    try:
        with session_scope() as session:
            if session.scalar(select(User.id).where(User.email == settings.smoke_email)) is not None:
                return "exists"
            session.add(User(email=settings.smoke_email, password_hash=hash_password(settings.smoke_password)))
        return "created"
    except SQLAlchemyError as exc:
        return f"no database access ({type(exc).__name__})"


class Smoke:
    """The steps, each timed; the first failure raises SmokeFailed."""

    def __init__(self, api: str, settings: Settings, *, timeout: float, report: Callable[[Step], None]):
        self.api = api.rstrip("/")
        self.settings = settings
        self.timeout = timeout
        self.report = report
        self.http = requests.Session()
        self.headers: dict[str, str] = {}

    def step(self, name: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail = action()
        except (requests.RequestException, SmokeFailed) as exc:
            took = f"{(time.perf_counter() - started) * 1000:.0f} ms"
            if isinstance(exc, requests.RequestException):
                exc = f"{self.api} did not answer ({type(exc).__name__}: {exc})"
            raise SmokeFailed(f"{name} ({took}): {exc}") from None
        self.report(Step(name, time.perf_counter() - started, detail))

    def run(self) -> None:
        self.step("health", self.health)
        self.step("ready", self.ready)
        self.step("sign in", self.sign_in)
        job_id = ""

        def submit() -> str:
            nonlocal job_id
            job_id = self.submit()
            return job_id

        self.step("submit quick add", submit)
        task_id = ""

        def wait() -> str:
            nonlocal task_id
            task_id = self.wait(job_id)
            return f"task {task_id}"

        self.step("job finished", wait)
        self.step("clean up", lambda: self.delete_task(task_id))

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(f"{self.api}{path}", headers=self.headers, timeout=REQUEST_TIMEOUT, **kwargs)

    def health(self) -> str:
        response = self.get("/health")
        if response.status_code != 200:
            raise SmokeFailed(_describe(response))
        return "alive"

    def ready(self) -> str:
        response = self.get("/ready")
        if response.status_code != 200:
            checks = _json(response).get("errors", {}).get("checks", {})
            raise SmokeFailed(f"{_describe(response)} {checks}".strip())
        return ", ".join(f"{name} {state}" for name, state in _json(response).get("checks", {}).items())

    def login(self) -> requests.Response:
        return self.http.post(f"{self.api}/v1/auth/login", timeout=REQUEST_TIMEOUT,
                              json={"email": self.settings.smoke_email, "password": self.settings.smoke_password})

    def sign_in(self) -> str:
        detail = self.settings.smoke_email
        response = self.login()
        if response.status_code == 401:
            made = ensure_account(self.settings)
            detail += f" (account {made})"
            if made == "created":
                response = self.login()
        if response.status_code != 200:
            raise SmokeFailed(f"{_describe(response)}; {detail}: check SMOKE_EMAIL and SMOKE_PASSWORD, or create "
                              "the account (`assistant smoke` creates it where it can reach DATABASE_URL)")
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return detail

    def submit(self) -> str:
        response = self.http.post(
            f"{self.api}/v1/jobs", headers={**self.headers, "Idempotency-Key": f"smoke-{uuid.uuid4()}"},
            json={"type": "tasks.quick_add", "params": {"text": "smoke test #smoke"}},
            timeout=REQUEST_TIMEOUT,
        )
        if response.status_code != 202:
            raise SmokeFailed(_describe(response))
        return response.json()["id"]

    def wait(self, job_id: str) -> str:
        deadline = time.monotonic() + self.timeout
        job: dict = {}
        while (remaining := deadline - time.monotonic()) > 0:
            wait = max(1, min(int(remaining), 25))
            response = self.http.get(f"{self.api}/v1/jobs/{job_id}", params={"wait": wait}, headers=self.headers,
                                     timeout=wait + REQUEST_TIMEOUT)
            if response.status_code != 200:
                raise SmokeFailed(_describe(response))
            job = response.json()
            if job["status"] == "succeeded":
                return job["result"]["task"]["id"]
            if job["status"] in ("failed", "canceled"):
                raise SmokeFailed(f"job {job_id} {job['status']}: {job.get('error')}")
        raise SmokeFailed(f"job {job_id} still {job.get('status', 'unknown')} after {self.timeout:g} s: "
                          "is a worker consuming the interactive queue?")

    def delete_task(self, task_id: str) -> str:
        response = self.http.delete(f"{self.api}/v1/tasks/{task_id}", headers=self.headers, timeout=REQUEST_TIMEOUT)
        if response.status_code not in (200, 204):
            raise SmokeFailed(_describe(response))
        return "task deleted"
