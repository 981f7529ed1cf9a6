"""Point-in-time recovery with pgBackRest, done the way ops/RUNBOOK.md tells an operator.

A throwaway PostgreSQL cluster runs with the archiving settings of the database image's
CMD (ops/postgres/Dockerfile), pgBackRest reads the image's configuration
(ops/postgres/pgbackrest.conf) and the repository that ops/postgres/pgbackrest-repository
makes from the app's object-storage variables: a directory, or S3 (moto's server, behind
nginx for the TLS that pgBackRest before 2.58 insists on). The runbook's marked blocks run
as written, as the postgres user; only the example values on their first lines change.
Where the container fixes a path the test cannot use (data directory, socket, repository
directory), pgBackRest's own PGBACKREST_* variables point it elsewhere.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import timedelta, timezone
from pathlib import Path

import psycopg2
import pytest
import requests

from bench.servers import ThrowawayPostgres, as_postgres, pg_bin
from tests.ops.test_nginx import need, throwaway_certificate
from tests.support import PASSWORD, ROOT, ManagedProcess, free_port, wait_until

OPS = ROOT / "ops" / "postgres"
RUNBOOK = ROOT / "ops" / "RUNBOOK.md"
STANZA = "assistant"
BUCKET = "assistant-backups"


# The people the test made (the migrations add the platform's own system account).
PEOPLE = "SELECT email FROM users WHERE role <> 'system'"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="module")
def servers():
    """PostgreSQL's server binaries (the only reason to skip) and pgBackRest."""
    try:
        pg_bin("initdb")
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL's server binaries are missing ({exc}); they are what is tested here")
    if shutil.which("pgbackrest") is None:
        pytest.fail("pgbackrest is not installed: apt-get install -y --no-install-recommends pgbackrest "
                    "(`make test` and .ci/run do it when they run as root)")


# -- what the files say ------------------------------------------------------------------


def dockerfile_cmd() -> list[str]:
    text = (OPS / "Dockerfile").read_text().replace("\\\n", " ")
    commands = re.findall(r"^CMD\s+(\[.*\])\s*$", text, re.M)
    assert len(commands) == 1, "ops/postgres/Dockerfile needs exactly one CMD, in JSON form"
    return json.loads(commands[0])


def server_settings() -> dict[str, str]:
    """The `-c name=value` settings of the image's CMD: what the live server runs with."""
    command = dockerfile_cmd()
    assert command[0] == "postgres"
    settings = {}
    for flag, setting in zip(command[1::2], command[2::2]):
        assert flag == "-c", f"unexpected {flag!r} in the image's CMD"
        name, value = setting.split("=", 1)
        settings[name] = value
    return settings


def runbook_block(name: str) -> str:
    match = re.search(rf"<!-- run by tests/ops/test_pitr.py: {re.escape(name)} -->\n```sh\n(.*?)```",
                      RUNBOOK.read_text(), re.S)
    assert match, f"ops/RUNBOOK.md has no block marked `{name}`"
    return match.group(1)


def run_block(name: str, env: dict[str, str], values: dict[str, str] | None = None,
              timeout: float = 120) -> str:
    """Run the runbook's block `name` as postgres, its first-line examples replaced by `values`."""
    lines = runbook_block(name).splitlines()
    values = values or {}
    for variable in values:
        assignment = next((line for line in lines if line.startswith(f"{variable}=")), None)
        assert assignment, f"the `{name}` block no longer sets {variable}"
        lines.remove(assignment)
    result = subprocess.run(as_postgres(["bash", "-euo", "pipefail", "-c", "\n".join(lines)]),
                            env={**env, **values}, cwd=tempfile.gettempdir(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"runbook block `{name}` failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# -- the pieces: a repository, pgBackRest's environment, a cluster -------------------------


class MotoServer(ManagedProcess):
    name = "moto"

    def __init__(self):
        self.port = free_port()
        super().__init__()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/", timeout=1).ok
        except requests.RequestException:
            return False


class TlsProxy(ManagedProcess):
    """nginx terminating TLS for `localhost` in front of a plain HTTP server."""

    name = "nginx-tls"

    def __init__(self, folder: Path, upstream: int):
        self.port = free_port()
        self.cert, key = throwaway_certificate(folder)
        self.conf = folder / "nginx.conf"
        temp = {kind: folder / kind for kind in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        self.conf.write_text(f"""
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {temp['body']};
  proxy_temp_path {temp['proxy']};
  fastcgi_temp_path {temp['fastcgi']};
  uwsgi_temp_path {temp['uwsgi']};
  scgi_temp_path {temp['scgi']};
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {self.cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_set_header Host $http_host;
      proxy_http_version 1.1;
      # Streamed both ways: nginx's workers could not write temporary files in this folder.
      proxy_request_buffering off;
      proxy_buffering off;
    }}
  }}
}}
""")
        super().__init__()

    def command(self) -> list[str]:
        return [need("nginx"), "-c", str(self.conf), "-e", str(self.conf.parent / "nginx-error.log")]

    def ready(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


class Repository:
    """Where pgBackRest keeps WAL and backups, and how to list what it wrote there."""

    def __init__(self, kind: str, folder: Path):
        self.kind = kind
        self.settings: dict[str, str] = {}  # the app's variables, as compose passes them to db
        self.pgbackrest: dict[str, str] = {}  # what the container fixes and the test cannot use
        self.processes: list[ManagedProcess] = []
        if kind == "directory":
            path = folder / "repo"
            path.mkdir()
            self.pgbackrest["PGBACKREST_REPO1_PATH"] = str(path)  # the image's is /var/lib/pgbackrest
        else:
            try:
                self._start_s3(folder)
            except BaseException:
                self.close()
                raise

    def _start_s3(self, folder: Path):
        moto = MotoServer()
        self.processes.append(moto)
        moto.start()
        proxy = TlsProxy(folder, moto.port)
        self.processes.append(proxy)
        proxy.start()
        self.endpoint = f"https://localhost:{proxy.port}"
        self.settings = {
            "OBJECT_STORAGE_URL": f"s3://{BUCKET}/prod",
            "S3_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
        }
        self.pgbackrest["PGBACKREST_REPO1_STORAGE_CA_FILE"] = str(proxy.cert)
        self.s3().create_bucket(Bucket=BUCKET)  # pgBackRest writes into a bucket, never creates one

    def s3(self):
        import boto3  # comes with moto[server], whose absence skips the S3 case instead

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test-key", aws_secret_access_key="test-secret",
                            verify=str(self.pgbackrest["PGBACKREST_REPO1_STORAGE_CA_FILE"]))

    def files(self, under: str) -> list[str]:
        """Names of the files pgBackRest wrote under `under` (archive/..., backup/...)."""
        if self.kind == "directory":
            root = Path(self.pgbackrest["PGBACKREST_REPO1_PATH"])
            names = (str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
            return [name for name in names if name.startswith(under)]
        listing = self.s3().list_objects_v2(Bucket=BUCKET, Prefix=f"prod/pgbackrest/{under}")
        return [item["Key"].removeprefix("prod/pgbackrest/") for item in listing.get("Contents", [])]

    def close(self):
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture(params=["directory", "s3"])
def repository(request, workdir):
    if request.param == "s3":
        need("nginx")
        pytest.importorskip("moto", reason="moto[server] is in the test extras: make install")
    repo = Repository(request.param, workdir)
    yield repo
    repo.close()


@pytest.fixture
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="pa-pitr-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def pgbackrest_env(repository: Repository, workdir: Path) -> dict[str, str]:
    """pgBackRest's environment: the image's files, and the repository the image would write."""
    conf_d = workdir / "conf.d"
    conf_d.mkdir()
    shutil.copy(OPS / "pgbackrest.conf", workdir / "pgbackrest.conf")
    made = subprocess.run([str(OPS / "pgbackrest-repository")], env={"PATH": os.environ["PATH"], **repository.settings},
                          capture_output=True, text=True, timeout=30, check=True)
    (conf_d / "repository.conf").write_text(made.stdout)
    for name in ("lock", "log"):
        (workdir / name).mkdir()
    if os.geteuid() == 0:
        for path in [workdir, *workdir.rglob("*")]:
            shutil.chown(path, "postgres", "postgres")
    return {
        "PATH": f"{Path(pg_bin('pg_ctl')).parent}:{os.environ['PATH']}",
        "LANG": "C.UTF-8",
        "PGBACKREST_CONFIG": str(workdir / "pgbackrest.conf"),
        "PGBACKREST_CONFIG_INCLUDE_PATH": str(conf_d),
        "PGBACKREST_LOCK_PATH": str(workdir / "lock"),
        "PGBACKREST_LOG_PATH": str(workdir / "log"),
        **repository.pgbackrest,
    }


def live_cluster(env: dict[str, str]) -> ThrowawayPostgres:
    """A cluster started as the image starts its server, pgBackRest's pg1 options pointing at it."""
    cluster = ThrowawayPostgres(settings=server_settings())
    cluster.env = {
        **env,
        "PGBACKREST_PG1_PATH": str(cluster.data),  # the image's is /var/lib/postgresql/data
        "PGBACKREST_PG1_PORT": str(cluster.port),
        "PGBACKREST_PG1_SOCKET_PATH": str(cluster.dir),
    }
    return cluster.init()


def assistant(cluster: ThrowawayPostgres, *args: str) -> str:
    """The operator's `assistant` command against `cluster`."""
    result = subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=ROOT,
                            env={**os.environ, "DATABASE_URL": cluster.url}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def query(port: int, sql: str) -> list[tuple]:
    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="assistant",
                                  connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


# -- the tests ---------------------------------------------------------------------------


def test_restore_to_a_point_in_time_keeps_what_came_before_and_drops_what_came_after(servers, repository, workdir):
    env = pgbackrest_env(repository, workdir)
    live = live_cluster(env)
    restored = ThrowawayPostgres()  # only its free port and directory: the runbook starts it
    try:
        assistant(live, "db", "upgrade")
        assert "full backup:" in run_block("first-backup", live.env)

        assistant(live, "users", "create-admin", "before@example.com", "--password", PASSWORD)
        # The target is a whole second on the server's clock, after A's commit; B commits
        # a full second after it, so neither clock skew nor rounding can blur the cut.
        target = query(live.port, "SELECT clock_timestamp()")[0][0].replace(microsecond=0) + timedelta(seconds=1)
        wait_until(lambda: query(live.port, "SELECT clock_timestamp()")[0][0] > target + timedelta(seconds=1), timeout=10, interval=0.1,
                   message="the server's clock to pass the target")
        assistant(live, "users", "create-admin", "after@example.com", "--password", PASSWORD)
        run_block("ship-wal", live.env)

        output = run_block("restore-to-time", live.env, {
            "TARGET": target.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00"),
            "RESTORE_DIR": str(restored.data),
            "PORT": str(restored.port),
        })
        assert "newest" in output  # the block's own look at the restored jobs table

        emails = {row[0] for row in query(restored.port, PEOPLE)}
        assert emails == {"before@example.com"}
        assert query(restored.port, "SELECT pg_is_in_recovery(), current_setting('archive_mode')") == [(False, "off")]
        assert {row[0] for row in query(live.port, PEOPLE)} == {
            "before@example.com", "after@example.com"}  # the live database was left alone

        archived = repository.files(f"archive/{STANZA}/")
        assert any(name.endswith(".zst") for name in archived), archived  # the image's compress-type
        assert repository.files(f"backup/{STANZA}/backup.info")
    finally:
        restored.destroy()
        live.destroy()


class BackupSchedule(ManagedProcess):
    """The image's ops/postgres/pgbackrest-backups, as postgres, in the server's environment."""

    name = "pgbackrest-backups"

    def __init__(self, script: Path, env: dict[str, str]):
        super().__init__()
        self.script = script
        self.env = env  # exactly the server's, nothing of this process's

    def command(self) -> list[str]:
        return as_postgres([str(self.script)])

    def ready(self) -> bool:
        return True


def test_the_database_image_backs_itself_up_once_the_server_answers(servers, workdir):
    """The stanza and a full first backup, unattended, with the schedule left running."""
    env = pgbackrest_env(Repository("directory", workdir), workdir)
    shutil.copy(OPS / "pgbackrest-backups", workdir / "pgbackrest-backups")
    live = live_cluster(env)
    schedule = BackupSchedule(workdir / "pgbackrest-backups", live.env)

    def backups() -> list[dict]:
        info = subprocess.run(as_postgres(["pgbackrest", f"--stanza={STANZA}", "--output=json", "info"]),
                              env=live.env, capture_output=True, text=True, timeout=30)
        return json.loads(info.stdout)[0].get("backup", []) if info.returncode == 0 else []

    try:
        assert backups() == []
        schedule.start()
        done = wait_until(backups, timeout=150, interval=2, message="the first backup")
        assert [backup["type"] for backup in done] == ["full"]
        assert schedule.proc.poll() is None, "the schedule must stay up for the nightly backups"
    finally:
        schedule.stop()
        live.destroy()


def test_the_repository_comes_from_the_apps_object_storage_variables():
    def made(**settings: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(OPS / "pgbackrest-repository")], env={"PATH": os.environ["PATH"], **settings},
                              capture_output=True, text=True, timeout=30)

    minio = made(OBJECT_STORAGE_URL="s3://backups/assistant/", S3_ENDPOINT_URL="http://minio:9000",
                 AWS_ACCESS_KEY_ID="key", AWS_SECRET_ACCESS_KEY="secret")
    assert minio.returncode == 0, minio.stderr
    assert set(minio.stdout.splitlines()) >= {
        "repo1-type=s3", "repo1-s3-bucket=backups", "repo1-path=/assistant/pgbackrest",
        "repo1-s3-endpoint=http://minio:9000", "repo1-s3-uri-style=path", "repo1-s3-region=us-east-1",
        "repo1-s3-key=key", "repo1-s3-key-secret=secret",
    }
    aws = made(OBJECT_STORAGE_URL="s3://backups", AWS_REGION="eu-west-1")
    assert set(aws.stdout.splitlines()) >= {
        "repo1-s3-endpoint=s3.eu-west-1.amazonaws.com", "repo1-s3-uri-style=host", "repo1-path=/pgbackrest",
        "repo1-s3-key-type=auto",  # the instance's or pod's role
    }
    assert made().stdout.splitlines() == ["[global]", "repo1-type=posix"]
    wrong = made(OBJECT_STORAGE_URL="backups/assistant")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert "OBJECT_STORAGE_URL must look like s3://bucket/prefix" in wrong.stderr


def test_the_image_archives_every_wal_segment_through_pgbackrest():
    settings = server_settings()
    assert settings["archive_mode"] == "on"
    assert re.fullmatch(rf"pgbackrest --stanza={STANZA} archive-push %p", settings["archive_command"])
    assert int(settings["archive_timeout"]) <= 60  # the runbook's "loses at most the last minute"
    text = (OPS / "Dockerfile").read_text()
    assert re.search(r"^FROM postgres:16\b", text, re.M)
    assert re.search(r"apt-get install .*\bpgbackrest\b", text)
    assert re.search(r"^COPY pgbackrest.conf /etc/pgbackrest/pgbackrest.conf$", text, re.M)
    assert f"[{STANZA}]" in (OPS / "pgbackrest.conf").read_text()
    for script in ("db-entrypoint", "pgbackrest-repository", "pgbackrest-backups"):
        assert script in text and os.access(OPS / script, os.X_OK), script
    assert re.search(r'^ENTRYPOINT \["db-entrypoint"\]', text, re.M)


def test_compose_builds_the_database_from_that_image_with_its_repository(tmp_path):
    """What `docker-compose config` makes of the db service (no Docker engine needed)."""
    import yaml

    binary = shutil.which("docker-compose")
    if binary is None:
        message = "docker-compose is not installed: apt-get install -y --no-install-recommends docker-compose"
        pytest.fail(message) if in_ci() else pytest.skip(message)
    # A project directory of the test's own, with its own .env (compose's env_file) and the
    # repository's ops/ for the build contexts: a developer's .env must not decide the outcome.
    (tmp_path / ".env").write_text("SECRET_KEY=test-only-secret\nERASURE_JOURNAL_KEY=test-only-erasure-key\n"
                                   "AUDIT_CHAIN_KEY=test-only-audit-key\n"
                                   "AWS_SECRET_ACCESS_KEY=test-only-minio-password\n"
                                   "FLOWER_BASIC_AUTH=ops:test-only-flower-password\n"
                                   "OBJECT_STORAGE_URL=s3://backups/assistant\n")
    (tmp_path / "ops").symlink_to(ROOT / "ops")
    result = subprocess.run(
        [binary, "--project-directory", str(tmp_path), "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    db = yaml.safe_load(result.stdout)["services"]["db"]
    assert Path(db["build"]["context"]).resolve() == OPS  # ops/postgres/Dockerfile
    assert db["init"] is True  # tini adopts the backup schedule (ops/postgres/db-entrypoint)
    assert any(str(volume).startswith("pgbackrest:/var/lib/pgbackrest") for volume in db["volumes"])
    assert set(db["environment"]) >= {
        "OBJECT_STORAGE_URL", "S3_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert db["environment"]["OBJECT_STORAGE_URL"] == "s3://backups/assistant"  # .env reaches pgBackRest
