"""Compressor.app's request options: multipart fields and JSON as native options (the model's groups)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from squeezer.api import jsonbody
from squeezer.api.errors import ApiError
from squeezer.api.jobflow import engine_options
from squeezer.engines.options import group_names

#: Compressor.app's ``compression`` levels (lossless, medium, high, ultra; high the default)
#: and Squeezer's own level names -> Squeezer levels
COMPRESSION = {"lossless": "lossless", "low": "low", "medium": "low", "high": "medium",
               "ultra": "high", "extreme": "extreme"}
#: option sections of Compressor.app that are no Squeezer option group: accepted, ignored
OTHER_MEDIA = {"archive", "website", "document"}
#: request keys besides the option groups (``pdf``, ``image``, …: the model's own groups,
#: so ``image.resize`` is ``Options.image.resize``)
KNOWN = {"compression", "webhook", "store"}
#: sections that carry the native options flat, as they always have (``pdf: {"dpi": 150,
#: "preset": "high", "password": "…"}``); the other groups are nested (``video.resize``)
FLAT_SECTIONS = {"pdf", "image"}
#: multipart fields that carry the options as one JSON object
JSON_FIELDS = ("options", "data", "json", "params")
INVALID_JSON = "Incoming request body does not contain a valid JSON data"
VALIDATION_FAILED = "Validation failed for one or more parameters"


# --- the request -------------------------------------------------------------------------


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, VALIDATION_FAILED, errors=[{"field": field, "message": message}])


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.replace("[", ".").replace("]", "").split(".") if p]
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    if parts:
        target[parts[-1]] = value


def _form_value(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") or stripped in ("true", "false", "null") or \
            stripped.lstrip("-").replace(".", "", 1).isdigit():
        try:
            return jsonbody.loads(stripped)
        except json.JSONDecodeError:
            pass
    return text


def form_request(fields: dict[str, str]) -> dict[str, Any]:
    """Multipart fields as the JSON request they stand for.

    Options may come as one JSON part (``options``, ``data``, ``json`` or
    ``params``), as fields named like ``pdf.dpi`` / ``pdf[dpi]`` / ``webhook.url``,
    or both (fields win); a field value that is JSON (``true``, ``150``, ``{…}``)
    is read as JSON.
    """
    raw: dict[str, Any] = {}
    for name in JSON_FIELDS:
        if fields.get(name):
            try:
                value = jsonbody.loads(fields[name])
            except json.JSONDecodeError:
                raise ApiError(422, INVALID_JSON, code="invalid_json") from None
            if not isinstance(value, dict):
                raise invalid(name, "must be a JSON object")
            raw.update(value)
    for name, text in fields.items():
        if name not in JSON_FIELDS:
            _set_path(raw, name, _form_value(text))
    return raw


def parse_options(raw: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
    """``(engine options, webhook URL, store spec)`` from a request; 422 with field errors."""
    errors: list[dict[str, str]] = []
    groups = set(group_names())
    for name in raw:
        if name not in KNOWN and name not in groups and name not in OTHER_MEDIA \
                and name != "url":
            errors.append({"field": name, "message": "unknown parameter"})
    options: dict[str, Any] = {}
    for section in sorted(groups):
        given = raw.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            errors.append({"field": section, "message": "must be an object"})
        elif section in FLAT_SECTIONS:
            options.update(given)  # native options as they are: errors name ``pdf.dpi``
        else:
            options[section] = given
    level = raw.get("compression")
    if level is not None:
        if not isinstance(level, str) or level.lower() not in COMPRESSION:
            errors.append({"field": "compression",
                           "message": f"must be one of {', '.join(COMPRESSION)}"})
        elif "level" not in options and "preset" not in options:  # pdf.preset wins
            options["level"] = COMPRESSION[level.lower()]
    webhook_url = None
    webhook = raw.get("webhook")
    if isinstance(webhook, str) and webhook:
        webhook_url = webhook
    elif isinstance(webhook, dict) and isinstance(webhook.get("url"), str) and webhook["url"]:
        webhook_url = webhook["url"]
    elif webhook is not None:
        errors.append({"field": "webhook.url", "message": "a URL is required"})
    store = raw.get("store")
    if store is not None:
        if not isinstance(store, dict):
            errors.append({"field": "store", "message": "must be an object"})
        else:
            try:
                uuid.UUID(str(store.get("connector", "")))
            except ValueError:
                errors.append({"field": "store.connector", "message": "a connector id is required"})
            if not isinstance(store.get("bucket"), str) or not store["bucket"]:
                errors.append({"field": "store.bucket", "message": "required"})
            if store.get("path") is not None and not isinstance(store["path"], str):
                errors.append({"field": "store.path", "message": "must be a string"})
    if errors:
        raise ApiError(422, VALIDATION_FAILED, errors=errors)
    return engine_options(options, field=None), webhook_url, store
