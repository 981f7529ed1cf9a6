"""Swagger UI at /docs, served from the pinned swagger-ui-bundle-v2 package under a strict CSP.

flask-smorest ships only a template that loads swagger-ui-dist from a public CDN, unpinned
and without an integrity check: a CDN compromise would run script next to the tokens an
operator types in, and the page shows nothing where there is no internet. Here the page
and its assets come from this server alone; the one inline script carries a nonce.
(swagger-ui-bundle-v2 is the maintained fork of swagger-ui-bundle, whose Swagger UI 4
cannot render an OpenAPI 3.1 document.)
"""
from __future__ import annotations

import secrets

from flask import Blueprint, Response, abort, redirect, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from shared.jobtypes import REGISTRY

blp = Blueprint("docs", __name__)

ASSETS = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Personal Assistant API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true}});
</script>
</body>
</html>
"""


def content_security_policy(nonce: str) -> str:
    # Swagger UI's React components set style attributes, hence 'unsafe-inline' for styles
    # alone; scripts run only from this origin or with this response's nonce.
    return (
        f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


@blp.get("/")
def root() -> Response:
    """The API's root: someone opening the address `make run` printed lands on the docs, not a 404."""
    return redirect("/docs", code=302)


@blp.get("/docs")
def swagger_ui() -> Response:
    nonce = secrets.token_urlsafe(16)
    response = Response(PAGE.format(nonce=nonce), mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy(nonce)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"  # a nonce is good for one page
    return response


@blp.get("/docs/assets/<name>")
def swagger_ui_asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    response = send_from_directory(swagger_ui_path, name, max_age=86400)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def component_name(type_name: str) -> str:
    """"tasks.quick_add" -> "TasksQuickAdd": a name the document and the SDK's types can use."""
    return "".join(part.capitalize() for part in type_name.replace(".", "_").split("_"))


def describe_results(api) -> None:
    """A job's `result`, typed per job type: Job becomes a oneOf of one variant per type,
    discriminated by `type`, each naming its type's result_schema (<Name>Result; null until
    it succeeded). Job keeps its own properties; a variant narrows only `type` and `result`."""
    spec = api.spec.components
    variants, mapping = [], {}
    for name in sorted(REGISTRY):
        base = component_name(name)
        spec.schema(f"{base}Result", component=REGISTRY[name].result_schema)
        spec.schema(f"{base}Job", component={
            "type": "object",
            "properties": {
                "type": {"type": "string", "const": name},
                "result": {"oneOf": [{"$ref": f"#/components/schemas/{base}Result"}, {"type": "null"}]},
            },
            "required": ["type"],
        })
        ref = f"#/components/schemas/{base}Job"
        variants.append({"$ref": ref})
        mapping[name] = ref
    job = spec.schemas["Job"]
    job["oneOf"] = variants
    job["discriminator"] = {"propertyName": "type", "mapping": mapping}
