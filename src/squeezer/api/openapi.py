"""Every error status in the OpenAPI document, with the body it really has.

FastAPI documents only what a route declares (and a ``422`` in its own
validation shape, which Squeezer never sends), so generated clients and
schemathesis saw statuses the service answers every day as "undocumented".
Here every operation gets every status an answer about a failure can carry:
the HTTP-level ones (routing, authentication, the body limit, rate limits,
outages, the receive deadlines) and the status of every declared error code
(:func:`squeezer.errors.error_classes`; a synchronous compression answers with
its job's code), each with its protocol's error schema: the native body, or
the vendor's own shape under its prefix.  PassportPDF answers failures with
``200`` and an ``Error`` object (its own convention), so its operations get
only what the layers in front of the route can answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from squeezer.errors import error_classes

#: statuses of the API's own answers, whatever the route: a bad request, no or a bad key,
#: no such resource or method, the receive deadline, a conflict, an expired resource, the
#: body limit, a media type, a range, invalid input, the rate limit, a bug, an outage
HTTP_STATUSES = (400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 416, 422, 429, 500, 503)
#: answered before any route runs (the HTTP protocol's deadlines), in the native shape
PROTOCOL_STATUSES = (408,)

_FIELD_ERRORS = {"type": "array", "items": {
    "type": "object", "required": ["field", "message"],
    "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object", "title": "Error",
        "description": "Every native failure: the status, a stable code, a plain message and "
                       "the request id (also in X-Request-ID); field errors for validation.",
        "required": ["success", "status", "id", "code", "message"],
        "properties": {"success": {"type": "boolean", "enum": [False]},
                       "status": {"type": "integer"}, "id": {"type": "string"},
                       "code": {"type": "string"}, "message": {"type": "string"},
                       "errors": _FIELD_ERRORS,
                       "job_id": {"type": "string", "description": "the failed job"}}},
    "CompressorError": {
        "type": "object", "title": "CompressorError",
        "description": "Compressor.app's error shape (seed 001).",
        "required": ["success", "status", "id", "message"],
        "properties": {"success": {"type": "boolean", "enum": [False]},
                       "status": {"type": "integer"}, "id": {"type": "string"},
                       "message": {"type": "string"}, "errors": _FIELD_ERRORS}},
    "PdfcoError": {
        "type": "object", "title": "PdfcoError", "description": "PDF.co's error shape.",
        "required": ["error", "status", "message"],
        "properties": {"error": {"type": "boolean", "enum": [True]},
                       "status": {"type": "integer"}, "message": {"type": "string"}}},
    "Pdf24Error": {
        "type": "object", "title": "Pdf24Error", "description": "PDF24's error shape.",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
    "NotReady": {
        "type": "object", "title": "NotReady",
        "description": "What /readyz found missing.",
        "required": ["status", "checks"],
        "properties": {"status": {"type": "string"},
                       "checks": {"type": "object",
                                  "additionalProperties": {"type": "string"}}}},
}


def _schema_for(path: str) -> str | None:
    """The error schema of the protocol ``path`` belongs to; None: PassportPDF (200s)."""
    if path.startswith("/1.0/"):
        return "CompressorError"
    if path.startswith(("/v1/pdf/", "/v1/job/", "/pdfco/")):
        return "PdfcoError"
    if path.startswith("/pdf24/"):
        return "Pdf24Error"
    if path.startswith("/api/"):
        return None
    return "Error"


def error_statuses() -> list[int]:
    """Every status a failure can be answered with, HTTP-level and declared codes'."""
    declared = {cls.http_status for cls in error_classes().values()}
    return sorted(set(HTTP_STATUSES) | declared)


def _description(status: int) -> str:
    """The status's reason phrase and the declared codes answered with it (a generated
    client's documentation says what a 422 can mean)."""
    from http import HTTPStatus

    codes = sorted(code for code, cls in error_classes().items() if cls.http_status == status)
    phrase = HTTPStatus(status).phrase
    return f"{phrase}; codes: {', '.join(codes)}" if codes else phrase


def _response(schema: str, status: int) -> dict[str, Any]:
    return {"description": _description(status),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with every operation's error statuses and their schemas filled in."""
    spec.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    schemas = spec["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)  # FastAPI's shape: Squeezer answers 422 with its own
    statuses = error_statuses()
    for path, operations in spec.get("paths", {}).items():
        vendor = _schema_for(path)
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in statuses if vendor else PROTOCOL_STATUSES:
                key = str(status)
                schema = vendor if vendor and status not in PROTOCOL_STATUSES else "Error"
                if key == "422" or key not in responses or not responses[key].get("content"):
                    responses[key] = _response(schema, status)
            if path == "/readyz":
                responses["503"] = {"description": "not ready", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/NotReady"}}}}
    return spec


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with the errors filled in (built once)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for ``path`` (for ``Allow`` on a 405), so the
    header and the document always agree; [] for a path it does not know."""
    import re

    table = getattr(app.state, "allow_table", None)
    if table is None:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")
            table.append((pattern, sorted(m.upper() for m in operations)))
        app.state.allow_table = table
    return next((methods for pattern, methods in table if pattern.match(path)), [])
