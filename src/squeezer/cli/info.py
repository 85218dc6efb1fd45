"""``squeezer options`` and ``squeezer config``: what the engines take, and how this process is set.

``options`` prints the levels (with what each means per format) and every
option with its flag, type, range and default, from the options model; with
``--json`` it prints exactly what ``GET /v1/options`` answers, with
``--markdown`` the tables of ``docs/options.md`` (a test holds the file to it).
``config`` prints the effective configuration with secrets masked, and with
``--variables`` every ``SQUEEZER_*`` variable and its default.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from squeezer.cli.base import EXIT_OK, command, load_config


def _options_arguments(p: argparse.ArgumentParser) -> None:
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print GET /v1/options's answer")
    form.add_argument("--markdown", action="store_true",
                      help="print the option tables of docs/options.md")


@command("options",
         arguments=_options_arguments,
         description="The compression levels (what each means for each kind of file) and every "
         "option with its flag, type, range and default: the same list GET /v1/options "
         "answers.")
def run_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from squeezer.engines.options import describe

    description = describe()
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        print(options_markdown(description) if args.markdown else options_text(description),
              end="")
    return EXIT_OK


def _default(option: dict[str, Any]) -> str:
    value = option["default"]
    if option["type"] == "boolean" and value is not None:
        return "on" if value else "off"
    if value in (None, [], ""):
        return "-"
    return str(value)


def _range(option: dict[str, Any]) -> str:
    if "enum" in option:
        return ", ".join(option["enum"])
    if "minimum" in option and "maximum" in option:
        return f"{option['minimum']:g}-{option['maximum']:g}"
    if "syntax" in option:
        return option["syntax"]
    return option["type"]


def options_text(description: dict[str, Any]) -> str:
    lines = [f"Levels (--level; default {description['default_level']}):"]
    for family in description["formats"]:
        lines.append(f"  {family['title']}:")
        for level, summary in family["levels"].items():
            lines.append(f"    {level:9} {summary}")
    group = object()
    for option in description["options"]:
        if option["group"] != group:
            group = option["group"]
            title = description["groups"].get(group, "") if group else "every file"
            lines.append(f"\nOptions for {title}:")
        lines.append(f"  {option['cli']:28} {option['name']:26} {_range(option):24} "
                     f"default {_default(option)}")
    return "\n".join(lines) + "\n"


def options_markdown(description: dict[str, Any]) -> str:
    """The generated part of docs/options.md: levels per format, then one table per group."""
    out = ["## Levels", "",
           f"One vocabulary for every kind of file; `{description['default_level']}` is the "
           "default. Deprecated names still accepted: "
           + ", ".join(f"`{old}` (now `{new}`)" for old, new in
                       {**description["deprecated"]["levels"],
                        **description["deprecated"]["options"]}.items()) + ".", ""]
    families = description["formats"]
    out.append("| level | " + " | ".join(f["title"] for f in families) + " |")
    out.append("|---|" + "---|" * len(families))
    for level in description["levels"]:
        out.append(f"| `{level}` | " + " | ".join(f["levels"][level] for f in families) + " |")
    group: object = object()
    for option in description["options"]:
        if option["group"] != group:
            group = option["group"]
            title = description["groups"].get(group, "") if group else "Every file"
            head = f"`{group}` options: {title}" if group else "Common options: every file"
            out += ["", f"## {head}", "",
                    "| option | CLI flag | type / values | default | also accepted as | meaning |",
                    "|---|---|---|---|---|---|"]
        aliases = ", ".join(f"`{a}`" for a in option.get("aliases", [])) or "-"
        out.append(f"| `{option['name']}` | `{option['cli']}` | {_range(option)} | "
                   f"{_default(option)} | {aliases} | {option['description']} |")
    return "\n".join(out) + "\n"


def _config_arguments(p: argparse.ArgumentParser) -> None:
    form = p.add_mutually_exclusive_group()
    form.add_argument("--variables", action="store_true",
                      help="list every SQUEEZER_* variable with its setting and default")
    form.add_argument("--markdown", action="store_true",
                      help="the settings table of docs/deploy.md")


@command("config",
         arguments=_config_arguments,
         description="The configuration this process would run with, from the SQUEEZER_* "
         "environment variables, as JSON with secrets masked; --variables lists every "
         "variable and its default.")
def run_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from squeezer.config import effective, variables, variables_markdown

    if args.markdown:
        print(variables_markdown(), end="")
        return EXIT_OK
    if args.variables:
        for variable, path, default, _ in variables():
            print(f"{variable:36} {path:32} {default}")
        return EXIT_OK
    print(json.dumps(effective(load_config(parser)), indent=2))
    return EXIT_OK
