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
import tomllib
from pathlib import Path

import pytest

from shared.jobtypes import QUEUES

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ("shared", "api", "workers", "scheduler", "ops")
LATER = "used by a later feature"
# Read by a library from the environment, not by our code: boto3's credential chain.
READ_BY_LIBRARIES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


# This module needs no database and no Redis.
pytestmark = pytest.mark.fast


# -- what the code reads ---------------------------------------------------------------


def _is_env_read(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in ("_env", "_int", "_float")  # shared/settings.py's readers
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
                for keyword in node.keywords:  # _int("DB_POOL_SIZE", "5", problems, alias="DATABASE_POOL_SIZE")
                    if keyword.arg == "alias" and isinstance(keyword.value, ast.Constant):
                        reads[keyword.value.value] = default
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "environ" and isinstance(node.slice, ast.Constant):
                reads.setdefault(node.slice.value, "")
    return reads


def settings_reads() -> set[str]:
    """Every variable of the settings table (shared/settings.py), aliases included."""
    from shared.settings import variables

    return set(variables())


def code_reads() -> set[str]:
    """Every variable our Python code, ops config and Procfile read."""
    names: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(env_reads(path))
    names |= settings_reads()
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


def test_env_example_is_generated_from_the_settings_table():
    """Every setting, its default and its help, as the table declares them: regenerate with
    `assistant settings example > .env.example` after adding one."""
    from shared.cli.settings import env_example as generated
    from shared.settings import Settings, variable

    assert (ROOT / ".env.example").read_text() == generated(), "run: assistant settings example > .env.example"
    listed = env_example()
    missing = sorted(variable(name) for name in Settings.model_fields if variable(name) not in listed)
    assert not missing, f".env.example does not list {missing}"


def test_env_example_lists_only_variables_the_code_reads_or_will():
    read = code_reads() | READ_BY_LIBRARIES
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


def _compose(tmp_path: Path, *args: str, env_text: str) -> subprocess.CompletedProcess:
    """docker-compose on the repository's compose file, with `env_text` as the project's .env."""
    binary = shutil.which("docker-compose")
    if binary is None:
        message = (
            "docker-compose is not installed; on Debian/Ubuntu: "
            "apt-get install -y --no-install-recommends docker-compose"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    # Only PATH and HOME, and a project directory of the test's own with its own .env: neither
    # this process's settings nor a developer's .env may decide the outcome.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    (tmp_path / ".env").write_text(env_text)
    if not (tmp_path / "ops").exists():  # build contexts (ops/postgres) are relative to the project
        (tmp_path / "ops").symlink_to(ROOT / "ops")
    return subprocess.run(
        [binary, "--project-directory", str(tmp_path), "-f", str(ROOT / "docker-compose.yml"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )


REQUIRED = ("SECRET_KEY=test-only-secret\nERASURE_JOURNAL_KEY=test-only-erasure-key\nAUDIT_CHAIN_KEY=test-only-audit-key\n"
            "AWS_SECRET_ACCESS_KEY=test-only-minio-password\nFLOWER_BASIC_AUTH=ops:test-only-flower-password\n")
APP_SERVICES = {"migrate", "api", "worker-interactive", "worker-bulk", "beat", "flower"}
# What docker-compose.yml sets for a container whatever .env says, by service, because the
# value describes the container rather than the deployment: the image's volumes, the
# addresses a process listens on inside its container, the proxy in front of the api.
PINNED = {
    "*": {"DATA_DIR": "/data", "ARTIFACTS_DIR": "/artifacts", "BACKUP_DIR": "/data/backups"},
    "api": {"BIND": "0.0.0.0:8000", "PORT": "8000", "TRUSTED_PROXIES": "1"},
    "worker-interactive": {"WORKER_METRICS_ADDRESS": "0.0.0.0"},
    "worker-bulk": {"WORKER_METRICS_ADDRESS": "0.0.0.0"},
    "flower": {"FLOWER_PORT": "5555", "FLOWER_ADDRESS": "0.0.0.0", "FLOWER_URL_PREFIX": "flower"},
}


def test_docker_compose_config_is_valid(tmp_path):
    result = _compose(tmp_path, "config", "-q", env_text=REQUIRED)
    assert result.returncode == 0, result.stderr
    services = _compose(tmp_path, "config", "--services", env_text=REQUIRED)
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == APP_SERVICES | {
        "db", "redis", "minio", "bucket", "nginx", "webclient", "postgres-exporter", "redis-exporter",
    }


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ERASURE_JOURNAL_KEY", "AWS_SECRET_ACCESS_KEY", "FLOWER_BASIC_AUTH"])
def test_docker_compose_requires_its_secrets(tmp_path, missing):
    text = "".join(line + "\n" for line in REQUIRED.splitlines() if not line.startswith(missing))
    result = _compose(tmp_path, "config", "-q", env_text=text)
    assert result.returncode != 0
    assert missing in result.stderr


def test_every_setting_in_env_reaches_every_app_container(tmp_path):
    """An operator's .env, every variable of .env.example set: each app service gets each one."""
    import yaml

    values = {name: f"from-env-{name.lower()}" for name in env_example()}
    text = "".join(f"{name}={value}\n" for name, value in values.items())
    result = _compose(tmp_path, "config", env_text=text)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]

    for name in APP_SERVICES:
        environment = services[name]["environment"]
        pinned = PINNED["*"] | PINNED.get(name, {})
        for variable, value in values.items():
            expected = pinned.get(variable, value)
            assert environment.get(variable) == expected, f"{name}: {variable}={environment.get(variable)!r}"
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == values["AWS_SECRET_ACCESS_KEY"]


def test_compose_leaves_the_images_production_mode_alone(tmp_path):
    """.env.example copied as it is must not switch the containers to development."""
    import yaml

    text = (ROOT / ".env.example").read_text() + REQUIRED
    result = _compose(tmp_path, "config", env_text=text)
    assert result.returncode == 0, result.stderr
    for name in APP_SERVICES:
        assert "APP_ENV" not in yaml.safe_load(result.stdout)["services"][name]["environment"]
    assert re.search(r"^ENV APP_ENV=production", (ROOT / "ops" / "Dockerfile").read_text(), re.M)


# -- the image ---------------------------------------------------------------------------


def pg_client_problems(dockerfile: str, compose: str, root: Path = ROOT) -> list[str]:
    """Why the image's pg_dump/pg_restore could not back up a PostgreSQL server compose runs."""
    import yaml

    problems = []
    arg = re.search(r"^ARG PG_MAJOR=(\d+)\s*$", dockerfile, re.M)
    if not arg or not re.search(r'postgresql-client-\$\{PG_MAJOR\}', dockerfile):
        return ["ops/Dockerfile installs no postgresql-client-${PG_MAJOR}"]
    client = int(arg.group(1))
    for name, service in yaml.safe_load(compose)["services"].items():
        image = service.get("image", "")
        build = service.get("build")
        if build:  # a server built on the official image (ops/postgres: PostgreSQL with pgBackRest)
            context = build if isinstance(build, str) else build.get("context", ".")
            built = root / context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            found = re.search(r"^FROM\s+(\S+)", built.read_text(), re.M) if built.is_file() else None
            image = found.group(1) if found else image
        server = re.fullmatch(r"(?:docker\.io/)?(?:library/)?postgres:(\d+)(?:[.\-].*)?", image)
        if server and int(server.group(1)) > client:
            problems.append(f"compose's {name} runs PostgreSQL {server.group(1)}; the image's client is {client}")
    return problems


def test_the_image_can_dump_and_restore_the_database_compose_runs(tmp_path):
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    server = (ROOT / "ops" / "postgres" / "Dockerfile").read_text()
    assert "build: ops/postgres" in compose and re.search(r"^FROM postgres:16\b", server, re.M)
    assert pg_client_problems(dockerfile, compose) == []
    # The check itself: a newer server, built or pulled, or no client at all, is caught.
    newer = tmp_path / "ops" / "postgres"
    newer.mkdir(parents=True)
    (newer / "Dockerfile").write_text(server.replace("FROM postgres:16", "FROM postgres:17"))
    assert pg_client_problems(dockerfile, compose, root=tmp_path) == [
        "compose's db runs PostgreSQL 17; the image's client is 16"]
    pulled = compose.replace("    image: personal-assistant-db:latest\n    build: ops/postgres\n", "    image: postgres:17\n")
    assert pg_client_problems(dockerfile, pulled) == ["compose's db runs PostgreSQL 17; the image's client is 16"]
    assert pg_client_problems(dockerfile.replace("postgresql-client-", "postgresql-contrib-"), compose)


def locked(path: Path) -> dict[str, str]:
    """name -> the pin and its hashes, as one string, of each requirement in a lock file."""
    text = path.read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+)(.*)$", line.strip())
        if match:
            hashes = sorted(re.findall(r"--hash=\S+", line))
            found[match.group(1).lower()] = " ".join([match.group(2), *hashes])
    return found


def test_the_image_installs_the_lock_and_make_install_tests_the_same_versions():
    from packaging.requirements import Requirement

    main, test = locked(ROOT / "requirements" / "main.txt"), locked(ROOT / "requirements" / "test.txt")
    assert main and all("--hash=sha256:" in pin for pin in main.values())
    different = {name: (pin, test.get(name)) for name, pin in main.items() if test.get(name) != pin}
    assert not different, f"requirements/test.txt differs from main.txt (what the image ships): {different}"
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    missing = [r for r in runtime if Requirement(r).name.lower().replace("_", "-") not in main]
    assert not missing, f"pyproject.toml requires {missing} but the lock does not pin them: run `make lock`"
    dockerfile = (ROOT / "ops" / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements/main.txt" in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements/test.txt" in makefile
    assert not any(line.strip() in ("requirements", "requirements/", "*.txt")
                   for line in (ROOT / ".dockerignore").read_text().splitlines())


def test_dependabot_updates_the_python_lock_and_the_images():
    import yaml

    updates = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())["updates"]
    ecosystems = {(u["package-ecosystem"], u["directory"]) for u in updates}
    assert ecosystems == {("pip", "/"), ("docker", "/ops"), ("docker-compose", "/")}
    assert (ROOT / "ops" / "Dockerfile").exists() and (ROOT / "docker-compose.yml").exists()
