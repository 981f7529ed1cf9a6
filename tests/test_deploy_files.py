"""The deployment files agree with the code: docker-compose.yml, .env.example, Procfile.

These tests read files and run `docker-compose config` (no Docker engine needed); they
use neither the database nor Redis.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.jobtypes import QUEUES

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ("shared", "api", "workers", "scheduler", "ops")
LATER = "used by a later feature"
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


# This module needs no database and no Redis: replace the suite's autouse fixtures.
@pytest.fixture(scope="session", autouse=True)
def _database():
    yield


@pytest.fixture(autouse=True)
def _clean_tables():
    yield


# -- what the code reads ---------------------------------------------------------------


def _is_env_read(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "_env"
    if isinstance(func, ast.Attribute):
        owner = func.value
        if func.attr == "get" and isinstance(owner, ast.Attribute) and owner.attr == "environ":
            return True  # os.environ.get(...)
        if func.attr == "get" and isinstance(owner, ast.Name) and owner.id == "environ":
            return True  # from os import environ; environ.get(...)
        return func.attr == "getenv" and isinstance(owner, ast.Name) and owner.id == "os"
    return False


def env_reads(path: Path) -> dict[str, str | None]:
    """NAME -> literal default ("" when none, None when not a literal) of each read in `path`."""
    reads: dict[str, str | None] = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        name = None
        if isinstance(node, ast.Call) and _is_env_read(node) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = first.value
                if len(node.args) < 2:
                    default = ""
                elif isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                    default = node.args[1].value
                else:
                    default = None
                reads[name] = default
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "environ" and isinstance(node.slice, ast.Constant):
                reads.setdefault(node.slice.value, "")
    return reads


def settings_reads() -> dict[str, str | None]:
    return env_reads(ROOT / "shared" / "settings.py")


def code_reads() -> set[str]:
    """Every variable our Python code, ops config and Procfile read."""
    names: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(env_reads(path))
    names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", (ROOT / "Procfile").read_text()))
    return names


# -- .env.example ----------------------------------------------------------------------


def env_example() -> dict[str, tuple[str, str]]:
    """NAME -> (value, the comment lines just above it) for each line of .env.example that
    sets a variable, commented out (`# NAME=value`) or not."""
    entries: dict[str, tuple[str, str]] = {}
    comment: list[str] = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        match = ASSIGNMENT.match(line)
        if match:
            name, value = match.groups()
            assert name not in entries, f".env.example lists {name} twice"
            entries[name] = (value.strip(), " ".join(comment))
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# "))
        else:
            comment = []
    return entries


def test_env_example_lists_every_setting_with_its_default():
    listed = env_example()
    reads = settings_reads()
    assert len(reads) > 20, "parsing shared/settings.py found too few _env() calls"
    missing = sorted(set(reads) - set(listed))
    assert not missing, f".env.example does not list {missing}, which shared/settings.py reads"
    wrong = {
        name: (listed[name][0], default)
        for name, default in reads.items()
        if default and listed[name][0] != default
    }
    assert not wrong, f".env.example value vs the code's default: {wrong}"


def test_env_example_lists_only_variables_the_code_reads_or_will():
    read = code_reads()
    unknown = sorted(
        name for name, (_value, comment) in env_example().items()
        if name not in read and LATER not in comment.lower()
    )
    assert not unknown, (
        f".env.example lists {unknown}: nothing reads them; remove them or mark them "
        f"'{LATER}'"
    )


def test_env_example_documents_each_variable():
    undocumented = sorted(name for name, (_v, comment) in env_example().items() if not comment)
    assert not undocumented, f"no comment above {undocumented} in .env.example"


def test_env_example_keeps_the_embedded_default():
    """Copied to .env as it is, it must not switch DATABASE_URL or REDIS_URL on."""
    text = (ROOT / ".env.example").read_text()
    for name in ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URL"):
        assert re.search(rf"^# {name}=\S", text, re.M), f"{name} should be a commented-out example"
        assert not re.search(rf"^{name}=", text, re.M), f"{name} must stay commented out"


# -- Procfile and compose --------------------------------------------------------------


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def queues_of(command: str) -> set[str]:
    match = re.search(r"(?:--queues|-Q)[\s=]+([\w,]+)", command)
    assert match, f"no --queues in {command!r}"
    return set(match.group(1).split(","))


def test_procfile_has_every_process_and_the_worker_takes_every_queue():
    processes = procfile()
    assert {"web", "worker", "beat", "flower", "redis"} <= set(processes)
    assert queues_of(processes["worker"]) == set(QUEUES)


def compose_services() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_compose_workers_take_every_queue_once():
    """One worker service per kind of work; together they consume every queue, each once."""
    taken: list[str] = []
    for name, service in compose_services().items():
        if name.startswith("worker"):
            command = service["command"]
            taken += sorted(queues_of(" ".join(command) if isinstance(command, list) else command))
    assert sorted(taken) == sorted(QUEUES)


def test_compose_interpolates_only_documented_variables():
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    missing = sorted(used - set(env_example()))
    assert not missing, f"docker-compose.yml reads {missing}; list them in .env.example"


def _compose(tmp_path: Path, *args: str, secret_key: str | None) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        message = (
            "docker-compose is not installed; on Debian/Ubuntu: "
            "apt-get install -y --no-install-recommends docker-compose"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    # Only PATH and HOME, and an empty env file: neither this process's settings nor a
    # developer's .env may decide the outcome.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    env_file = tmp_path / "empty.env"
    env_file.touch()
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"),
         "--env-file", str(env_file), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_docker_compose_config_is_valid(tmp_path):
    result = _compose(tmp_path, "config", "-q", secret_key="test-only-secret")
    assert result.returncode == 0, result.stderr
    services = _compose(tmp_path, "config", "--services", secret_key="test-only-secret")
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == {
        "db", "redis", "migrate", "api", "worker-interactive", "worker-bulk", "beat", "flower", "nginx",
        "webclient",
    }


def test_docker_compose_requires_a_secret_key(tmp_path):
    result = _compose(tmp_path, "config", "-q", secret_key=None)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
