"""PDF.co's parameters (profiles, config, password) as native options."""

from __future__ import annotations

import json
from typing import Any

from squeezer.api import jsonbody
from squeezer.api.errors import ApiError
from squeezer.api.jobflow import engine_options

#: PDF.co ``profiles`` keys → Squeezer options (other keys must be Squeezer options).
PROFILE_KEYS = {"jpegquality": "image_quality", "resamplingresolution": "dpi",
                "grayscaleimages": "color_model", "resampleimages": None,
                "imageoptimizationformat": None}


# --- parameters ------------------------------------------------------------------------------


def bad(name: str, message: str) -> ApiError:
    return ApiError(400, f"{name}: {message}", code="invalid_parameter")


def boolean_param(params: dict[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise bad(name, f"must be true or false, not {value!r}")


def json_object_param(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = jsonbody.loads(value)
        except json.JSONDecodeError:
            raise bad(name, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise bad(name, "must be a JSON object")
    return value


def engine_options_of(params: dict[str, Any]) -> dict[str, Any]:
    """``password``, ``profiles`` (PDF.co keys or engine options) and ``config`` (engine
    options) as validated engine options."""
    raw: dict[str, Any] = {}
    raw.update(json_object_param(params, "config"))
    profiles = json_object_param(params, "profiles")
    resample = None
    for name, value in profiles.items():
        known = name.lower()
        if known not in PROFILE_KEYS:
            raw[name] = value
        elif known == "resampleimages":
            resample = value
        elif known == "grayscaleimages":
            if value is True or str(value).lower() == "true":
                raw["color_model"] = "gray"
        elif target := PROFILE_KEYS[known]:
            raw[target] = value
    if resample is False or str(resample).lower() == "false":
        raw.pop("dpi", None)
    password = params.get("password")
    if password not in (None, ""):
        raw["password"] = str(password)
    try:
        return engine_options(raw, field="profiles")
    except ApiError as exc:
        details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors or [])
        raise ApiError(400, f"invalid profiles/config ({details})",
                       code="invalid_parameter") from None
