"""gzip for JSON and HTML of 1 KB or more when the client accepts it; compressed formats as they are."""
from __future__ import annotations

import gzip
import json
import time

from shared import artifacts, db
from shared.models import Job
from tests.factories import make_job

GZIP = {"Accept-Encoding": "gzip, deflate, br"}


def test_the_openapi_document_is_gzipped_for_a_client_that_accepts_it(client):
    plain = client.get("/openapi.json")
    zipped = client.get("/openapi.json", headers=GZIP)

    assert plain.headers.get("Content-Encoding") is None and len(plain.data) > 20_000
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert len(zipped.data) < len(plain.data) / 4
    assert json.loads(gzip.decompress(zipped.data)) == plain.json


def test_small_bodies_are_sent_as_they_are(client):
    response = client.get("/health", headers=GZIP)
    assert response.headers.get("Content-Encoding") is None and response.json == {"status": "ok"}


def test_a_long_list_is_gzipped(client, user, headers):
    for i in range(20):
        make_job(user, params={"text": f"task number {i} with some words to make it longer"})

    response = client.get("/v1/jobs?limit=20", headers=headers | {"Accept-Encoding": "gzip"})

    assert response.headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(response.data))["items"]) == 20


def test_an_etag_of_a_gzipped_job_still_answers_304_and_holds_a_long_poll(client, user, headers):
    job = make_job(user, params={"text": "x" * 2000}, status="running")
    first = client.get(f"/v1/jobs/{job.id}", headers=headers | GZIP)
    assert first.headers["Content-Encoding"] == "gzip"
    etag = first.headers["ETag"]
    assert etag.endswith(':gzip"')

    again = client.get(f"/v1/jobs/{job.id}", headers=headers | GZIP | {"If-None-Match": etag})
    assert again.status_code == 304

    started = time.monotonic()
    waited = client.get(f"/v1/jobs/{job.id}?wait=1", headers=headers | GZIP | {"If-None-Match": etag})
    assert waited.status_code == 304 and time.monotonic() - started >= 0.9  # it waited for a change


def store(settings, user, name, content_type, data):
    job = make_job(user, status="succeeded")
    with db.session_scope() as session:
        artifacts.store(session=session, settings=settings, job=session.get(Job, job.id), name=name,
                        content_type=content_type, data=data)
    return job


def test_html_artifacts_are_gzipped_zips_and_pngs_are_not(client, settings, user, headers):
    html = store(settings, user, "digest.html", "text/html; charset=utf-8", b"<p>agenda</p>" * 200)
    png = store(settings, user, "chart.png", "image/png", b"\x89PNG" + bytes(range(256)) * 20)
    archive = store(settings, user, "export.zip", "application/zip", b"PK\x03\x04" + bytes(range(256)) * 20)

    page = client.get(f"/v1/jobs/{html.id}/artifact", headers=headers | GZIP)
    assert page.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(page.get_data()) == b"<p>agenda</p>" * 200
    for job in (png, archive):
        response = client.get(f"/v1/jobs/{job.id}/artifact", headers=headers | GZIP)
        assert response.status_code == 200 and response.headers.get("Content-Encoding") is None
