"""The compression flags of ``squeezer compress``, generated from the options model.

Every flag, its ``--help`` line, its choices and its range come from
:func:`squeezer.engines.options.option_specs`; nothing here declares an
option.  A flag sets the option it was made from (``--dpi`` sets ``pdf.dpi``),
and the values are validated by the model itself, so the CLI accepts exactly
what the API accepts and refuses it with the same words.

Besides one flag per option there are the older spellings the CLI always had:
``--preset`` (the level), ``--compression`` (deprecated, the level),
``--quality`` (the image quality and the PDF image quality at once), and the
``--gray``/``--bitonal`` shortcuts for ``--color-model``.
"""

from __future__ import annotations

import argparse
from typing import Any

#: flags that stand for a fixed value of an option
SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "--gray": ("pdf.color_model", "gray", "all images in PDFs to grayscale"),
    "--bitonal": ("pdf.color_model", "bitonal", "all images in PDFs to 1-bit black and white"),
}


def _dest(path: str) -> str:
    return "opt__" + path.replace(".", "__")


def _help(spec: Any) -> str:
    text = spec.description.rstrip(".")
    if spec.choices and spec.kind == "enum":
        text += f" ({', '.join(spec.choices)})"
    elif spec.choices:
        text += f" (comma-separated: {', '.join(spec.choices)})"
    if spec.minimum is not None and spec.maximum is not None:
        text += f"; {spec.minimum:g}-{spec.maximum:g}"
    if spec.kind == "boolean":
        text += "; default: on" if spec.default else ""
    elif spec.default not in (None, [], "") and "default:" not in text:
        text += f"; default: {spec.default}"
    return text.replace("%", "%%")


def _metavar(spec: Any) -> str:
    if spec.syntax:
        return spec.syntax
    if spec.secret:
        return "X"
    return {"integer": "N", "number": "X", "enum": spec.name.upper()}.get(spec.kind, "VALUE")


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One argument group per option group, one flag per option (plus the old spellings)."""
    from squeezer.engines.options import FAN_OUT, group_model, group_names, option_specs

    specs = option_specs()
    common = parser.add_argument_group("compression (every file)")
    sections: dict[str | None, argparse._ArgumentGroup] = {None: common}
    for group in group_names():
        sections[group] = parser.add_argument_group(
            f"{group_model(group).title} (the '{group}' options)")
    for spec in specs:
        section = sections[spec.group]
        kwargs: dict[str, Any] = {"dest": _dest(spec.path), "default": None, "help": _help(spec)}
        if spec.kind == "boolean":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = _metavar(spec)
            kwargs["type"] = {"integer": int, "number": float}.get(spec.kind, str)
        names = [spec.flag]
        if spec.path == "level":
            names.append("--preset")
        section.add_argument(*names, **kwargs)
        if spec.path == "level":
            section.add_argument("--compression", dest=_dest("compression"), default=None,
                                 metavar="LEVEL", help="deprecated: use --level")
    for alias, paths in FAN_OUT.items():
        if alias == "quality":
            common.add_argument("--quality", dest=_dest("quality"), type=str, default=None,
                                metavar="N", help="a fixed quality 1-100 for every image (sets "
                                + " and ".join(f"--{p.replace('.', '-').replace('_', '-')}"
                                               for p in paths) + ")")
    shortcuts = sections.get("pdf", common).add_mutually_exclusive_group()
    for flag, (path, value, text) in SHORTCUTS.items():
        shortcuts.add_argument(flag, dest=_dest(f"{flag[2:]}!"), action="store_const",
                               const=(path, value), default=None, help=text)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options the flags name, as a nested request (``{"pdf": {"dpi": 150}}``)."""
    out: dict[str, Any] = {}
    for name, value in vars(args).items():
        if not name.startswith("opt__") or value is None:
            continue
        if name.endswith("!"):
            path, value = value
        else:
            path = name.removeprefix("opt__").replace("__", ".")
        target = out
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target.setdefault(leaf, value)
    return out


def flag_of(path: str) -> str:
    """The flag that sets option ``path`` (for error messages)."""
    from squeezer.engines.options import option_specs

    for spec in option_specs():
        if spec.path == path or path in spec.aliases:
            return spec.flag
    return "--" + path.replace(".", "-").replace("_", "-")


def options_from_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """The :class:`~squeezer.engines.options.Options` the flags ask for; a value the model
    refuses is a one-line usage error naming the flag (``--dpi 10: must be between 72 and 2400``)."""
    from pydantic import ValidationError

    from squeezer.cli.base import _one_line
    from squeezer.engines.options import Options

    given = given_options(args)
    try:
        return Options.model_validate(given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = ".".join(str(p) for p in error["loc"]) or "option"
            flag = flag_of(path)
            message = range_message(path, str(error["type"]), error.get("ctx") or {}) \
                or str(error["msg"])
            message = message.removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
            shown = "" if path == "password" else f" {_given_value(given, path)}"
            problems.append(f"{flag}{shown}: {message}")
        parser.error(_one_line("; ".join(problems)))


def _given_value(given: dict[str, Any], path: str) -> Any:
    value: Any = given
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    return value


def range_message(path: str, kind: str, ctx: dict[str, Any]) -> str | None:
    """"must be between 72 and 2400" for a value outside a numeric option's bounds."""
    from squeezer.engines.options import option_specs

    if kind not in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return None
    spec = next((s for s in option_specs() if s.path == path), None)
    if spec is not None and spec.minimum is not None and spec.maximum is not None:
        return f"must be between {spec.minimum:g} and {spec.maximum:g}"
    if "gt" in ctx:
        return f"must be more than {ctx['gt']}"
    return None
