"""Swagger UI at /docs: served from this server (no CDN), under a Content-Security-Policy with a nonce."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import requests

from tests.support import ServerProcess

pytestmark = pytest.mark.fast  # no PostgreSQL, Redis or worker

NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")


def test_the_page_loads_nothing_from_elsewhere_and_its_one_inline_script_carries_the_nonce(client):
    response = client.get("/docs")

    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self' 'nonce-" in policy
    assert "unsafe-eval" not in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    [nonce] = NONCE.findall(policy)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", page)
    assert inline == [f' nonce="{nonce}"']
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must not load from another host"
    assert NONCE.findall(client.get("/docs").headers["Content-Security-Policy"]) != [nonce]  # one per page


@pytest.mark.parametrize("name, mimetype", [
    ("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"), ("favicon-32x32.png", "image/png"),
])
def test_the_assets_come_from_the_pinned_package(client, name, mimetype):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 200 and response.mimetype == mimetype and len(response.data) > 300


@pytest.mark.parametrize("path", ["/docs/assets/index.html", "/docs/assets/..%2f__init__.py",
                                  "/docs/assets/../../shared/settings.py"])
def test_nothing_else_of_the_package_or_the_disk_is_served(client, path):
    assert client.get(path).status_code == 404


def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        message = "chromium is not installed; on Debian: apt-get install -y --no-install-recommends chromium"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return binary


def test_a_real_browser_shows_every_operation_under_the_policy():
    """Headless Chromium renders /docs from gunicorn: with a blocked script it would show nothing."""
    binary = chromium()
    server = ServerProcess().start()
    try:
        spec = requests.get(f"{server.url}/openapi.json", timeout=10).json()
        operations = sum(1 for item in spec["paths"].values() for method in item
                         if method in {"get", "post", "put", "patch", "delete"})
        dom = subprocess.run(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--virtual-time-budget=15000", "--dump-dom", f"{server.url}/docs"],
            capture_output=True, text=True, timeout=120,
        ).stdout
    finally:
        server.stop()

    shown = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    assert len(shown) == operations > 40, dom[-2000:]
    assert "/v1/jobs" in shown


def test_the_api_root_redirects_to_the_docs(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/docs"
