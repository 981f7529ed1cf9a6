"""Flower, as `assistant flower` starts it for operators: behind basic auth, under a prefix."""
from __future__ import annotations

import sys

import pytest
import requests

from tests.support import ManagedProcess, free_port


class FlowerProcess(ManagedProcess):
    name = "flower"

    def __init__(self, env: dict):
        self.port = free_port()
        super().__init__({"FLOWER_PORT": str(self.port), "FLOWER_ADDRESS": "127.0.0.1", **env})

    def command(self) -> list[str]:
        return [sys.executable, "-m", "shared.cli", "flower"]

    def ready(self) -> bool:
        try:
            requests.get(f"http://127.0.0.1:{self.port}/", timeout=1)
            return True
        except requests.RequestException:
            return False


@pytest.fixture(scope="module")
def flower():
    process = FlowerProcess({"FLOWER_BASIC_AUTH": "ops:s3cret-flower", "FLOWER_URL_PREFIX": "flower"})
    process.start()
    yield process
    process.stop()


def test_flower_refuses_without_credentials(flower):
    base = f"http://127.0.0.1:{flower.port}/flower"
    assert requests.get(f"{base}/", timeout=5).status_code == 401
    assert requests.get(f"{base}/workers", auth=("ops", "wrong"), timeout=5).status_code == 401


def test_flower_answers_with_credentials_under_its_prefix(flower):
    base = f"http://127.0.0.1:{flower.port}/flower"
    response = requests.get(f"{base}/workers", auth=("ops", "s3cret-flower"), timeout=10)
    assert response.status_code == 200
    assert "/flower/static/" in response.text  # links work behind nginx's /flower/
    metrics = requests.get(f"{base}/metrics", auth=("ops", "s3cret-flower"), timeout=10)
    assert metrics.status_code == 200 and "flower_" in metrics.text


def test_the_password_is_not_in_flowers_log(flower):
    requests.get(f"http://127.0.0.1:{flower.port}/flower/", auth=("ops", "s3cret-flower"), timeout=5)
    assert "s3cret-flower" not in flower.log_path.read_text(errors="replace")
    with open(f"/proc/{flower.proc.pid}/cmdline", "rb") as cmdline:  # what `ps` shows
        assert b"s3cret-flower" not in cmdline.read()


def test_an_empty_basic_auth_variable_means_no_auth_not_an_empty_password():
    process = FlowerProcess({"FLOWER_BASIC_AUTH": "", "FLOWER_URL_PREFIX": ""}).start()
    try:
        assert requests.get(f"http://127.0.0.1:{process.port}/workers", timeout=10).status_code == 200
    finally:
        process.stop()


@pytest.mark.worker
def test_flower_shows_the_task_of_a_job_the_worker_ran(flower, worker, client, admin_headers):
    """Task events reach Flower (the worker sends them in batches: shared.celery_app.TaskEventsInBatches)."""
    from tests.support import wait_for_job, wait_until

    job_id = client.post("/v1/jobs", json={"type": "ops.ping", "params": {}}, headers=admin_headers).json["id"]
    assert wait_for_job(client, job_id, admin_headers)["status"] == "succeeded"

    def shown() -> list:
        tasks = requests.get(f"http://127.0.0.1:{flower.port}/flower/api/tasks", auth=("ops", "s3cret-flower"),
                             timeout=5).json()
        return [task for task in tasks.values() if job_id in str(task.get("args")) and task.get("state") == "SUCCESS"]

    task = wait_until(shown, timeout=15, message="Flower to show the job's task as succeeded")[0]
    assert task["name"] == "jobs.ops.ping" and task["received"] and task["started"] and task["succeeded"]
