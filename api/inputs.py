"""Hostile input refused before anything parses it: NUL and unpaired surrogates in any
string (body, query, headers), NaN and Infinity, and JSON nested deeper than MAX_JSON_DEPTH.

Each of these used to reach the database or the parser and answer 500: PostgreSQL stores
neither NUL nor a lone UTF-16 surrogate in text or JSON, Python's json module reads NaN
and Infinity (which no JSON column takes), and a body nested 100,000 deep overflows its
recursion. flask-smorest hands bodies to webargs, which calls json.loads on the raw
bytes, so a Flask JSON provider would never see them: the raw body is checked here, in a
before_request hook, ahead of every view and of every schema.
"""
from __future__ import annotations

import json
import re

from flask import Flask, request

from api.errors import error_response

MAX_JSON_DEPTH = 64
# A str decoded from JSON or UTF-8 holds a surrogate code point only when it was unpaired
# ("\ud800"): a proper pair decodes to one code point above U+FFFF.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_REPORTED = 10  # problems named in one answer


class _Refused(Exception):
    def __init__(self, code: str, message: str, errors: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.errors = code, message, errors


def unstorable(text: str) -> str | None:
    """What in `text` no database column can hold, said for people; None when nothing."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Contains a NUL character (U+0000), which is not allowed."
    return f"Contains an unpaired surrogate (U+{ord(match.group()):04X}), which is not valid Unicode text."


def _refuse_constant(name: str):
    raise _Refused("invalid_json", f"{name} is not a JSON number; send a finite number or null.",
                   {"json": [f"{name} is not allowed."]})


def load_strict_json(data: bytes, *, malformed_raises: bool = False):
    """The JSON in `data`, or _Refused naming what is wrong with it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if malformed_raises:
            raise _Refused("invalid_characters", unstorable("\ud800")) from None
        raise _Refused("invalid_json", "The request body is not UTF-8.", {"json": ["Invalid UTF-8."]}) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _Refused(*_too_deep()) from None
    except ValueError:  # JSONDecodeError: webargs answers malformed JSON with its own 400
        if malformed_raises:
            raise
        return None
    _check_tree(value)
    return value


class UnsafeJson(ValueError):
    """JSON text inside a request that the body's guard would have refused; the message says why."""


def loads_checked(text: str | bytes):
    """json.loads for JSON carried inside a request (a field holding JSON as a string, a cursor):
    the same refusals as a body (depth, NUL, lone surrogates, NaN), since the body's guard saw
    only a string. Raises UnsafeJson, or ValueError when it is not JSON at all."""
    try:
        return load_strict_json(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"),
                                malformed_raises=True)
    except _Refused as refused:
        raise UnsafeJson(refused.message) from None


def _too_deep() -> tuple:
    return ("json_too_deep", f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.",
            {"json": [f"Nest at most {MAX_JSON_DEPTH} levels."]})


def _check_tree(value) -> None:
    """Depth and strings of a parsed body, walked without recursion (keys count as strings)."""
    problems: dict[str, list[str]] = {}
    stack = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise _Refused(*_too_deep())
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and (problem := unstorable(key)):
                    problems.setdefault(child_path, []).append(f"The key: {problem}")
                stack.append((child, depth + 1, child_path))
        elif isinstance(node, str) and (problem := unstorable(node)):
            problems.setdefault(path or "json", []).append(problem)
    if problems:
        named = dict(sorted(problems.items())[:MAX_REPORTED])
        raise _Refused("invalid_characters", "Text in the body holds characters that cannot be stored; see errors.",
                       named)


def _check_query() -> None:
    problems: dict[str, list[str]] = {}
    for key, value in request.args.items(multi=True):
        if problem := unstorable(key):
            problems.setdefault("query", []).append(f"A parameter name: {problem}")
        elif problem := unstorable(value):
            problems.setdefault(key, []).append(problem)
    if problems:
        raise _Refused("invalid_characters", "A query parameter holds characters that cannot be stored; see errors.",
                       dict(list(problems.items())[:MAX_REPORTED]))


def _check_headers() -> None:
    # gunicorn refuses a NUL in a header itself; another server may not, and Idempotency-Key is stored.
    problems = {name: [problem] for name, value in request.headers.items() if (problem := unstorable(value))}
    if problems:
        raise _Refused("invalid_characters", "A header holds characters that cannot be stored; see errors.",
                       dict(list(problems.items())[:MAX_REPORTED]))


def check_request():
    """before_request: refuse what no view could store or parse (400 naming the problem)."""
    if request.routing_exception is not None:
        return None  # a 404 or 405 answers without reading anything
    try:
        _check_headers()
        _check_query()
        if request.is_json and (request.content_length or request.headers.get("Transfer-Encoding")):
            load_strict_json(request.get_data(cache=True))
    except _Refused as refused:
        return error_response(400, refused.code, refused.message, refused.errors)
    return None


def init_app(app: Flask) -> None:
    app.before_request(check_request)
