"""/app/: the web client's built files, served by the api with a CSP that allows only this origin."""
from __future__ import annotations

import pytest

INDEX = '<!doctype html><script type="module" src="/app/assets/index-abc123.js"></script>'


@pytest.fixture
def built(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log('hi')")
    (tmp_path / "sw.js").write_text("self.addEventListener('push', () => {})")
    return tmp_path


@pytest.fixture
def web(settings, built):
    from api import create_app

    return create_app(settings.replace(web_client_dir=built)).test_client()


def test_the_page_and_its_routes_are_index_html_under_a_strict_csp(web):
    for path in ("/app/", "/app/admin", "/app/tasks/", "/app/google?link_code=abc"):
        answer = web.get(path)
        assert answer.status_code == 200, path
        assert answer.text == INDEX
        assert answer.headers["Cache-Control"] == "no-cache"  # a new build is seen at once
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
    assert web.get("/app").status_code == 308 and web.get("/app").headers["Location"].endswith("/app/")


def test_hashed_assets_are_cached_for_good_and_missing_files_are_json_404s(web):
    asset = web.get("/app/assets/index-abc123.js")
    assert asset.status_code == 200 and "javascript" in asset.headers["Content-Type"]
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert web.get("/app/sw.js").headers["Cache-Control"] == "no-cache"  # a service worker must update
    for path in ("/app/assets/gone.js", "/app/favicon.png", "/app/../setup.cfg", "/app/%2e%2e/setup.cfg"):
        missing = web.get(path)
        assert missing.status_code == 404, path
        assert missing.json["code"] == "not_found", path


def test_without_a_build_it_says_how_to_make_one(settings, tmp_path):
    from api import create_app

    client = create_app(settings.replace(web_client_dir=tmp_path / "nothing")).test_client()
    answer = client.get("/app/")
    assert answer.status_code == 404
    assert answer.json["code"] == "web_client_not_built" and "make run" in answer.json["message"]


def test_the_web_client_is_not_in_the_openapi_document(web):
    assert not [path for path in web.get("/openapi.json").json["paths"] if path.startswith("/app")]
