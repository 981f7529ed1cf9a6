"""Artifacts: only their owner (or a valid signed link) can download them."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from shared import artifacts, db
from shared.models import Artifact, Job, utcnow
from shared.storage import artifact_storage
from tests.factories import make_job


def store(settings, job, name="report.html", data=b"<h1>hi</h1>", content_type="text/html; charset=utf-8", **kw):
    with db.session_scope() as session:
        row = artifacts.store(session=session, settings=settings, job=session.get(Job, job.id), name=name,
                              content_type=content_type, data=data, **kw)
        return artifacts.link(settings, row)


def test_the_owner_downloads_an_artifact_by_name(client, settings, user, headers):
    job = make_job(user, status="succeeded")
    store(settings, job, "review.json", b'{"a": 1}', "application/json")
    store(settings, job, "chart.png", b"\x89PNG fake", "image/png")

    response = client.get(f"/v1/jobs/{job.id}/artifact?name=chart.png", headers=headers)

    assert response.status_code == 200
    assert response.data == b"\x89PNG fake"
    assert response.mimetype == "image/png"
    first = client.get(f"/v1/jobs/{job.id}/artifact", headers=headers)
    assert first.status_code == 200 and first.json == {"a": 1}
    # Served from here, a report may not be framed by another site (clickjacking).
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_another_users_artifact_is_404_even_by_name(client, settings, user, other_headers):
    job = make_job(user, status="succeeded")
    store(settings, job)

    for url in (f"/v1/jobs/{job.id}/artifact", f"/v1/jobs/{job.id}/artifact?name=report.html"):
        response = client.get(url, headers=other_headers)
        assert response.status_code == 404, response.data
        assert response.json["code"] == "not_found"


def test_without_a_token_or_link_it_is_401(client, settings, user):
    job = make_job(user, status="succeeded")
    store(settings, job)
    assert client.get(f"/v1/jobs/{job.id}/artifact").status_code == 401


def test_a_signed_link_works_without_auth_until_it_expires(client, settings, user):
    job = make_job(user, status="succeeded")
    link = store(settings, job)

    assert client.get(link["artifact_url"]).data == b"<h1>hi</h1>"

    with db.session_scope() as session:
        row = session.query(Artifact).filter_by(job_id=job.id).one()
        old_token, _ = artifacts.sign(settings, row, now=utcnow() - timedelta(seconds=settings.artifact_link_seconds + 1))
    response = client.get(f"/v1/jobs/{job.id}/artifact?name=report.html&token={old_token}")
    assert response.status_code == 404


def test_a_signed_link_is_bound_to_its_job_and_name(client, settings, user):
    job = make_job(user, status="succeeded")
    other_job = make_job(user, status="succeeded")
    link = store(settings, job)
    store(settings, job, "secret.json", b"{}", "application/json")
    store(settings, other_job)
    token = parse_qs(urlsplit(link["artifact_url"]).query)["token"][0]

    assert client.get(f"/v1/jobs/{job.id}/artifact?name=secret.json&token={token}").status_code == 404
    assert client.get(f"/v1/jobs/{other_job.id}/artifact?name=report.html&token={token}").status_code == 404
    assert client.get(f"/v1/jobs/{job.id}/artifact?name=report.html&token={token[:-2]}xx").status_code == 404


def test_an_expired_artifact_is_gone(client, settings, user, headers):
    job = make_job(user, status="succeeded")
    link = store(settings, job, now=utcnow() - timedelta(days=settings.artifact_ttl_days + 1))

    assert client.get(f"/v1/jobs/{job.id}/artifact", headers=headers).status_code == 404
    assert client.get(link["artifact_url"]).status_code == 404


def test_a_rerun_replaces_the_artifact_and_records_its_checksum(settings, user):
    import hashlib

    job = make_job(user, status="running")
    store(settings, job, data=b"first")
    store(settings, job, data=b"second")

    with db.session_scope() as session:
        rows = session.query(Artifact).filter_by(job_id=job.id).all()
        assert len(rows) == 1
        assert rows[0].sha256 == hashlib.sha256(b"second").hexdigest() and rows[0].size == 6
        assert artifact_storage(settings).local_path(rows[0].path).read_bytes() == b"second"
