"""ops/nginx.conf: `nginx -t` accepts it, and a real nginx run from it behaves as promised.

The test copy differs from the file only where a test must: the certificate is a
throwaway self-signed one, the htpasswd a temporary file, the upstreams and listening
ports local ones (nginx -t resolves upstream host names, and `api` resolves only inside
compose or Kubernetes).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import urllib3

from tests.ops.test_flower import FlowerProcess
from tests.ops.test_logging import json_lines
from tests.support import ROOT, ManagedProcess, free_port, wait_for_job, wait_until

NGINX_CONF = ROOT / "ops" / "nginx.conf"
INSTALL = "apt-get install -y --no-install-recommends nginx-light openssl"


def need(tool: str) -> str:
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin")
    if found:
        return found
    message = f"{tool} is not installed; on Debian/Ubuntu: {INSTALL}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


def throwaway_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        [need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def config_copy(folder: Path, *, api: str = "127.0.0.1:9", flower: str = "127.0.0.1:9", events: str = "127.0.0.1:9",
              http_port: int | None = None, https_port: int | None = None) -> Path:
    """ops/nginx.conf with a throwaway certificate, local upstreams and ports, in `folder`."""
    cert, key = throwaway_certificate(folder)
    htpasswd = folder / "flower.htpasswd"
    htpasswd.write_text("ops:{PLAIN}flower-pass\n")
    text = NGINX_CONF.read_text()
    replacements = {
        "/etc/nginx/tls/tls.crt": str(cert),
        "/etc/nginx/tls/tls.key": str(key),
        "/etc/nginx/flower.htpasswd": str(htpasswd),
        "server api:8000;": f"server {api};",
        "server flower:5555;": f"server {flower};",
        "server events:8001;": f"server {events};",
        "pid /tmp/nginx.pid;": f"pid {folder / 'nginx.pid'};",
        "access_log /dev/stdout json;": f"access_log {folder / 'access.log'} json;",
        "root /usr/share/nginx;": f"root {folder / 'www'};",  # the web client's files: www/app/
    }
    for old, new in replacements.items():
        assert old in text, f"ops/nginx.conf no longer has {old!r}; update this test"
        text = text.replace(old, new)
    if http_port:
        text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};").replace("listen [::]:80;", "")
    if https_port:
        text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
        text = text.replace("listen [::]:443 ssl http2;", "")
    if os.geteuid() == 0:
        text = "user root;\n" + text  # the workers read files in this private temp folder
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


def test_nginx_accepts_the_config(tmp_path):
    nginx = need("nginx")
    conf = config_copy(tmp_path)
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_the_config_keeps_its_promises_on_paper():
    text = NGINX_CONF.read_text()
    assert re.search(r"return 301 https://", text)
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", text).group(1))
    assert read_timeout > 30, "long-polls (?wait=30) need a longer proxy_read_timeout"
    assert "client_max_body_size 1m;" in text
    for header in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options"):
        assert f"add_header {header}" in text


class Insecure:
    """requests without certificate checks (a Session's verify=False loses to REQUESTS_CA_BUNDLE)."""

    def get(self, url, **kwargs):
        return requests.get(url, verify=False, timeout=15, **kwargs)


class NginxProcess(ManagedProcess):
    name = "nginx"

    def __init__(self, conf: Path, https_port: int):
        self.conf = conf
        self.https_port = https_port
        super().__init__()

    def command(self) -> list[str]:
        return [need("nginx"), "-p", str(self.conf.parent), "-e", "stderr", "-c", str(self.conf),
                "-g", "daemon off;"]

    def ready(self) -> bool:
        try:
            requests.get(f"https://127.0.0.1:{self.https_port}/health", verify=False, timeout=1)
            return True
        except requests.RequestException:
            return False


@pytest.mark.worker
def test_nginx_in_front_of_the_api_and_flower(tmp_path, live_server, worker, user, headers):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    need("nginx")
    flower = FlowerProcess({"FLOWER_BASIC_AUTH": "ops:flower-pass", "FLOWER_URL_PREFIX": "flower"}).start()
    http_port, https_port = free_port(), free_port()
    # The web process serves the held connections too (the events process is another test's).
    conf = config_copy(tmp_path, api=f"127.0.0.1:{live_server.port}", flower=f"127.0.0.1:{flower.port}",
                     events=f"127.0.0.1:{live_server.port}", http_port=http_port, https_port=https_port)
    nginx = NginxProcess(conf, https_port).start()
    base = f"https://127.0.0.1:{https_port}"
    try:
        redirect = requests.get(f"http://127.0.0.1:{http_port}/v1/me?x=1", allow_redirects=False, timeout=5)
        assert redirect.status_code == 301
        assert redirect.headers["Location"].startswith("https://127.0.0.1") and redirect.headers["Location"].endswith("/v1/me?x=1")

        request_id = f"nginx-{uuid.uuid4().hex}"
        health = requests.get(f"{base}/health", headers={"X-Request-ID": request_id}, verify=False, timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert health.headers["X-Request-ID"] == request_id
        assert health.headers["Strict-Transport-Security"].startswith("max-age=")
        assert health.headers["X-Frame-Options"] == "DENY"
        assert "nginx/" not in health.headers.get("Server", "")
        # Without one, nginx makes the id and the api echoes it.
        assert re.fullmatch(r"[0-9a-f]{32}", requests.get(f"{base}/health", verify=False, timeout=5).headers["X-Request-ID"])

        assert requests.get(f"{base}/metrics", verify=False, timeout=5).status_code == 404
        too_big = requests.post(f"{base}/v1/auth/login", data=b"x" * (1024 * 1024 + 10),
                                headers={"Content-Type": "application/json"}, verify=False, timeout=10)
        assert too_big.status_code == 413

        assert requests.get(f"{base}/flower/", verify=False, timeout=5).status_code == 401
        assert requests.get(f"{base}/flower/workers", auth=("ops", "nope"), verify=False, timeout=5).status_code == 401
        workers = requests.get(f"{base}/flower/workers", auth=("ops", "flower-pass"), verify=False, timeout=10)
        assert workers.status_code == 200 and "/flower/static/" in workers.text

        log = (tmp_path / "access.log").read_text()
        assert request_id in log

        # One request followed from nginx through the api into the worker's log lines.
        submitted = requests.post(f"{base}/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "tea"}},
                                  headers=headers, verify=False, timeout=10)
        assert submitted.status_code == 202, submitted.text
        nginx_id = submitted.headers["X-Request-ID"]
        job_id = submitted.json()["id"]
        assert wait_for_job(Insecure(), job_id, headers, base_url=base)["status"] == "succeeded"
        assert f'"request_id":"{nginx_id}"' in (tmp_path / "access.log").read_text()
        worker_lines = wait_until(
            lambda: [line for line in json_lines(worker.log_path.read_text(errors="replace"))
                     if line.get("job_id") == job_id and line.get("request_id") == nginx_id],
            message="the worker's lines with nginx's request id")
        assert {line["event"] for line in worker_lines} >= {"task started"}
    finally:
        nginx.stop()
        flower.stop()


class PlainUpstream:
    """An upstream that never compresses: 2 KB of JSON, HTML, a zip, and 300 bytes of JSON."""

    BODIES = {
        "/big.json": ("application/json", b'{"items": [' + b'"abcdefgh",' * 200 + b'"z"]}'),
        "/page.html": ("text/html; charset=utf-8", b"<p>agenda</p>" * 200),
        "/export.zip": ("application/zip", b"PK\x03\x04" + b"\x00" * 2048),
        "/small.json": ("application/json", b'{"status": "' + b"x" * 300 + b'"}'),
    }

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.BODIES

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                content_type, body = bodies[self.path]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_nginx_gzips_json_and_html_and_leaves_compressed_formats_alone(tmp_path):
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    need("nginx")
    upstream = PlainUpstream()
    https_port = free_port()
    conf = config_copy(tmp_path, api=f"127.0.0.1:{upstream.port}", http_port=free_port(), https_port=https_port)
    nginx = NginxProcess(conf, https_port).start()
    try:
        def get(path):
            return requests.get(f"https://127.0.0.1:{https_port}{path}", headers={"Accept-Encoding": "gzip"},
                                verify=False, timeout=10)

        for path in ("/big.json", "/page.html"):
            response = get(path)
            assert response.headers.get("Content-Encoding") == "gzip", path
            assert response.content == PlainUpstream.BODIES[path][1]  # requests undid the gzip
        for path in ("/export.zip", "/small.json"):
            response = get(path)
            assert "Content-Encoding" not in response.headers, path
    finally:
        nginx.stop()
        upstream.close()


def test_nginx_serves_the_built_web_client_under_its_csp(tmp_path):
    from tests.clients.npm import WEB

    dist = WEB / "dist"
    if not (dist / "index.html").is_file():
        pytest.fail("clients/web/dist is not built: `make test` builds it (or: make web)")
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    shutil.copytree(dist, tmp_path / "www" / "app")
    https_port = free_port()
    conf = config_copy(tmp_path, http_port=free_port(), https_port=https_port)
    nginx = NginxProcess(conf, https_port).start()
    base = f"https://127.0.0.1:{https_port}"
    try:
        index = (dist / "index.html").read_text()
        for path in ("/app/", "/app/admin", "/app/google?link_code=x"):
            page = requests.get(f"{base}{path}", verify=False, timeout=5)
            assert page.status_code == 200 and page.text == index, path
            csp = page.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert page.headers["Strict-Transport-Security"].startswith("max-age=")
            assert page.headers["Cache-Control"] == "no-cache"
        assets = re.findall(r'(?:src|href)="(/app/assets/[^"]+)"', index)
        assert assets, index
        for asset in assets:
            answer = requests.get(f"{base}{asset}", verify=False, timeout=5)
            assert answer.status_code == 200 and "immutable" in answer.headers["Cache-Control"], asset
        assert requests.get(f"{base}/app/assets/gone.js", verify=False, timeout=5).status_code == 404
        moved = requests.get(f"{base}/app", verify=False, timeout=5, allow_redirects=False)
        assert moved.status_code == 301 and moved.headers["Location"].endswith("/app/")
    finally:
        nginx.stop()
