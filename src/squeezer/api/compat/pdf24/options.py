"""PDF24's compressPdf parameters as native options, and read back for its job map."""

from __future__ import annotations

from typing import Any

from squeezer.api.errors import ApiError
from squeezer.api.jobflow import engine_options
from squeezer.engines.options import Options

#: PDF24 ``mode`` → Squeezer level.  "normal" is the mode PDF24's client sends; the
#: Squeezer level names are accepted as modes too.  dpi/imageQuality override either.
MODES = {"normal": "medium", "lossless": "lossless", "low": "low", "medium": "medium",
         "high": "high", "extreme": "extreme"}
MODE_OF_LEVEL = {"medium": "normal", "lossless": "lossless", "low": "low", "high": "high",
                 "extreme": "extreme"}
#: PDF24 ``colorModel`` → Squeezer ``color_model``.
COLOR_MODELS = {"": "keep", "color": "keep", "colour": "keep", "rgb": "keep", "gray": "gray",
                "grey": "gray", "grayscale": "gray", "greyscale": "gray"}


# --- options ---------------------------------------------------------------------------------


def int_param(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise bad(name, "must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise bad(name, "must be a whole number")


def bad(name: str, message: str) -> ApiError:
    return ApiError(422, f"{name} {message}", code="invalid_parameter")


def pdf24_options(body: dict[str, Any]) -> dict[str, Any]:
    """compressPdf's dpi / imageQuality / mode / colorModel as validated engine options."""
    mode = str(body.get("mode") or "normal").strip().lower()
    if mode not in MODES:
        raise bad("mode", f"is not one of {', '.join(sorted(MODES))}: {body.get('mode')!r}")
    color = str(body.get("colorModel") or "").strip().lower()
    if color not in COLOR_MODELS:
        raise bad("colorModel", f"must be \"\" (keep colour) or \"gray\", not {color!r}")
    pdf: dict[str, Any] = {}
    raw: dict[str, Any] = {"level": MODES[mode], "pdf": pdf}
    dpi = int_param(body, "dpi")
    if dpi is not None:
        pdf["dpi"] = dpi
    quality = int_param(body, "imageQuality")
    if quality is not None:
        pdf["image_quality"] = quality
    if COLOR_MODELS[color] != "keep":
        pdf["color_model"] = COLOR_MODELS[color]
    try:
        return engine_options(raw, field=None)
    except ApiError as exc:  # name PDF24's fields, not the engine's
        names = {"pdf.dpi": "dpi", "pdf.image_quality": "imageQuality",
                 "pdf.color_model": "colorModel", "level": "mode"}
        errors = [{"field": names.get(e["field"], e["field"]), "message": e["message"]}
                  for e in exc.errors or []]
        shown = "; ".join(f"{e['field']} {e['message']}" for e in errors)
        raise ApiError(422, shown or exc.message, code="invalid_parameter") from None


def params_of(options: dict[str, Any]) -> dict[str, str]:
    """The ``param.*`` entries PDF24 echoes, read back from a job's engine options."""
    given = options.get("pdf") or {}
    read = Options.model_validate(options)
    return {
        "param.dpi": str(read.pdf.dpi) if "dpi" in given else "",
        "param.imageQuality": str(read.pdf.image_quality) if "image_quality" in given else "",
        "param.mode": MODE_OF_LEVEL.get(read.level.value, "normal"),
        "param.colorModel": "gray" if read.pdf.color_model.value == "gray" else "",
    }
