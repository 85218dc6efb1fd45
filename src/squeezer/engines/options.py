"""The options of every engine, as one typed model: common options at the top, one group per format.

``{level, remove_metadata, target_size, password, pdf: {...}, image: {...}, ...}``:
the shape Compressor.app's own validation errors imply (``"field": "video.resize"``).
Common options apply to every file; a group applies only to its format, and
options given for a format the file is not are named in one warning of the
report (:meth:`Options.not_for`), never silently dropped.

This model is the only place an option is declared.  The CLI's flags and
``--help`` (:mod:`squeezer.cli.compress`), the API's validation and OpenAPI
schema, ``GET /v1/options`` and the web page's controls, the docs' option
tables (``docs/options.md``) and each engine's resolved settings are all
generated from it (:func:`option_specs`, :func:`describe`).

Older requests were flat: the PDF and image options sat at the top level
(``dpi``, ``format``), the level was ``preset`` (PDFs) or ``compression``
(images).  Flat names keep working as aliases of their group's field
(``dpi`` → ``pdf.dpi``); ``quality`` and ``image_quality`` set both the image
quality and the PDF image quality, as they did.  ``compression`` and the level
name ``ultra`` are deprecated: accepted for one release, with a warning in the
report (:attr:`Options.notices`).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic.fields import FieldInfo

from squeezer.engines.audio.options import AudioOptions
from squeezer.engines.container.options import ArchiveOptions
from squeezer.engines.image.options import ImageOptions
from squeezer.engines.level import DEFAULT_LEVEL, DEPRECATED_LEVELS, Level, level_of
from squeezer.engines.optiontypes import ByteSize, OptionGroup
from squeezer.engines.pdf.options import PdfOptions
from squeezer.engines.video.options import VideoOptions

#: Names of the level besides ``level`` (flat aliases), and whether each is deprecated.
LEVEL_ALIASES: dict[str, bool] = {"preset": False, "compression": True}
#: Old flat names that set a field in more than one group.
FAN_OUT: dict[str, tuple[str, ...]] = {
    "quality": ("image.quality", "pdf.image_quality"),
    "image_quality": ("pdf.image_quality", "image.quality"),
}


class Options(BaseModel):
    """What a caller may ask of any engine. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    level: Level = Field(
        DEFAULT_LEVEL, description="How much to compress; what each level means per format: "
        "docs/options.md or `squeezer options`.")
    remove_metadata: bool = Field(
        False, description="Drop metadata (document info, XMP, EXIF, tags) the file does not "
        "need to display.")
    target_size: ByteSize | None = Field(
        None, description="Aim for at most this many bytes (e.g. 2MB, 500KB).",
        json_schema_extra={"x-syntax": "SIZE"})
    password: str | None = Field(
        None, repr=False, description="Password to open an encrypted input.")
    pdf: PdfOptions = Field(default_factory=PdfOptions)
    image: ImageOptions = Field(default_factory=ImageOptions)
    video: VideoOptions = Field(default_factory=VideoOptions)
    audio: AudioOptions = Field(default_factory=AudioOptions)
    archive: ArchiveOptions = Field(default_factory=ArchiveOptions)

    #: deprecation warnings raised while reading the request (they go into the report)
    _notices: list[str] = PrivateAttr(default_factory=list)
    #: the group options the request named itself (``pdf.dpi``), not through a fan-out alias
    _given: list[str] = PrivateAttr(default_factory=list)

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return level_of(value) if value is not None else DEFAULT_LEVEL

    @model_validator(mode="wrap")
    @classmethod
    def _aliases(cls, data: Any, handler: Any) -> Options:
        notices: list[str] = []
        given: list[str] = []
        if isinstance(data, Mapping):
            data = _nest(dict(data), notices, given)
        model: Options = handler(data)
        if notices or given:
            model._notices = notices
            model._given = given
        return model

    @property
    def notices(self) -> list[str]:
        """Deprecation warnings about how the request was written."""
        return list(self._notices)

    def not_for(self, groups: frozenset[str] | set[str]) -> list[str]:
        """The group options the request named that an engine using ``groups`` ignores."""
        return [path for path in self._given if path.split(".", 1)[0] not in groups]

    def dump(self) -> dict[str, Any]:
        """The options as JSON, nested, without what was left at its default."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def echo(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` (the request these options were read from) with each value as validated:
        the request's own keys and shape (flat or nested, aliases included), typed values.

        What a job stores and shows back: a client reads its own request, and a
        worker reading it again gets the same options and the same notices.
        """
        dumped = self.model_dump(mode="json")
        flat = flat_aliases()
        out: dict[str, Any] = {}
        for key, value in given.items():
            if key in dumped and isinstance(dumped[key], dict) and isinstance(value, Mapping):
                out[key] = {name: dumped[key][name] for name in value if name in dumped[key]}
            elif key == "level" or key in LEVEL_ALIASES:
                if value is not None:
                    out[key] = str(getattr(value, "value", value)).strip().lower()
            elif key in FAN_OUT:
                group, name = FAN_OUT[key][0].split(".", 1)
                out[key] = dumped[group][name]
            elif key in flat:
                group, name = flat[key].split(".", 1)
                out[key] = dumped[group][name]
            elif key in dumped:
                out[key] = dumped[key]
        return out


def group_names() -> tuple[str, ...]:
    """The format groups of :class:`Options` (``pdf``, ``image``, ...), in declaration order."""
    return tuple(name for name, info in Options.model_fields.items()
                 if _group_model(info) is not None)


def _group_model(info: FieldInfo) -> type[OptionGroup] | None:
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, OptionGroup):
        return annotation
    return None


def group_model(name: str) -> type[OptionGroup]:
    model = _group_model(Options.model_fields[name])
    assert model is not None, name
    return model


def flat_aliases() -> dict[str, str]:
    """Old flat name -> the group field it sets (``dpi`` -> ``pdf.dpi``)."""
    out: dict[str, str] = {}
    for group in group_names():
        model = group_model(group)
        if model.flat:
            for name in model.model_fields:
                out[name] = f"{group}.{name}"
    return out


def _nest(data: dict[str, Any], notices: list[str], given: list[str]) -> dict[str, Any]:
    """A request with flat aliases moved into their groups (nested values win over flat ones).

    ``notices`` gets the deprecation warnings, ``given`` the group options the
    request names itself (for :meth:`Options.not_for`).
    """
    groups = set(group_names())
    flat = flat_aliases()
    out: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    fanned: dict[str, dict[str, Any]] = {}
    level_names: dict[str, Any] = {}
    for key, value in data.items():
        if key in groups:
            if isinstance(value, BaseModel):
                given.extend(f"{key}.{name}" for name in sorted(value.model_fields_set))
                value = value.model_dump(exclude_unset=True)
            if isinstance(value, Mapping):
                nested.setdefault(key, {}).update(value)
                given.extend(f"{key}.{name}" for name in value if f"{key}.{name}" not in given)
            else:
                out[key] = value  # not an object: the model names the error
        elif key in LEVEL_ALIASES or key == "level":
            level_names[key] = value
        elif key in FAN_OUT:
            if value is not None:
                for path in FAN_OUT[key]:
                    group, name = path.split(".", 1)
                    fanned.setdefault(group, {})[name] = value
        elif key in flat:
            group, name = flat[key].split(".", 1)
            nested.setdefault(group, {}).setdefault(name, value)
            given.append(flat[key])
        else:
            out[key] = value  # a common option, or unknown: the model decides
    for group, values in fanned.items():
        merged = dict(values)
        merged.update(nested.get(group, {}))
        nested[group] = merged
    for group, values in nested.items():
        out[group] = values
    chosen = _chosen_level(level_names, notices)
    if chosen is not None:
        out["level"] = chosen
    return out


def _chosen_level(names: dict[str, Any], notices: list[str]) -> Any:
    """The level from ``level``, ``preset`` or (deprecated) ``compression``, in that order."""
    for key in ("level", *LEVEL_ALIASES):
        value = names.get(key)
        if value is None:
            continue
        if LEVEL_ALIASES.get(key):
            notices.append(f"'{key}' is deprecated and will be removed; use 'level' "
                           "(lossless, low, medium, high, extreme)")
        text = str(getattr(value, "value", value)).strip().lower()
        if text in DEPRECATED_LEVELS:
            notices.append(f"level '{text}' is deprecated and will be removed; it now means "
                           f"'{DEPRECATED_LEVELS[text].value}'")
        others = [k for k in names if k != key and names[k] is not None
                  and str(getattr(names[k], "value", names[k])).lower() != text]
        if others:
            notices.append(f"'{key}' decided the level; {', '.join(others)} ignored")
        return value
    return None


# --- descriptions: what the CLI, GET /v1/options and the docs are generated from ----------------


@dataclass(frozen=True)
class OptionSpec:
    """One option as the doors present it."""

    path: str  #: ``level``, ``pdf.dpi``
    group: str | None  #: None for a common option
    name: str
    kind: str  #: boolean, integer, number, string, enum, size, list
    default: Any
    description: str
    nullable: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    syntax: str | None = None  #: how a text value is written (``MODE:WxH``, ``SIZE``)
    aliases: tuple[str, ...] = ()  #: other names the API accepts at the top level
    flag: str = ""  #: the CLI flag
    secret: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.path, "group": self.group, "type": self.kind,
                               "default": self.default, "nullable": self.nullable,
                               "description": self.description, "cli": self.flag}
        if self.choices:
            out["enum"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.syntax:
            out["syntax"] = self.syntax
        if self.aliases:
            out["aliases"] = list(self.aliases)
        return out


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``(inner type, nullable)`` of ``X | None``."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _spec(path: str, group: str | None, name: str, info: FieldInfo,
          aliases: tuple[str, ...], flag: str) -> OptionSpec:
    inner, nullable = _unwrap(info.annotation)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    bounds: dict[str, Any] = {}
    for meta in info.metadata:
        for key in ("ge", "le", "gt", "lt"):
            if getattr(meta, key, None) is not None:
                bounds[key] = getattr(meta, key)
    choices: tuple[str, ...] = ()
    syntax = extra.get("x-syntax")
    syntax = syntax if isinstance(syntax, str) else None  # a JSON value in pydantic's types
    if inner is bool:
        kind = "boolean"
    elif isinstance(inner, type) and issubclass(inner, Enum):
        kind, choices = "enum", tuple(m.value for m in inner)
    elif syntax == "SIZE":
        kind = "size"
    elif typing.get_origin(inner) is list:
        kind = "list"
        (item,) = typing.get_args(inner)
        if isinstance(item, type) and issubclass(item, Enum):
            choices = tuple(m.value for m in item)
    elif inner is int:
        kind = "integer"
    elif inner is float:
        kind = "number"
    else:
        kind = "string"
    default = info.get_default(call_default_factory=True)
    default = getattr(default, "value", default)
    if isinstance(default, list):
        default = [getattr(v, "value", v) for v in default]
    return OptionSpec(
        path=path, group=group, name=name, kind=kind, default=default,
        description=info.description or "", nullable=nullable, choices=choices,
        minimum=bounds.get("ge", bounds.get("gt")), maximum=bounds.get("le", bounds.get("lt")),
        syntax=syntax, aliases=aliases, flag=flag, secret=name == "password",
        extra={k: v for k, v in extra.items() if k != "x-syntax"},
    )


def option_specs() -> list[OptionSpec]:
    """Every option, common ones first, then each group's in declaration order."""
    specs: list[OptionSpec] = []
    for name, info in Options.model_fields.items():
        if _group_model(info) is not None:
            continue
        aliases = tuple(a for a in LEVEL_ALIASES) if name == "level" else ()
        specs.append(_spec(name, None, name, info, aliases, "--" + name.replace("_", "-")))
    fanned = {path: alias for alias, paths in FAN_OUT.items() for path in paths}
    for group in group_names():
        model = group_model(group)
        for name, info in model.model_fields.items():
            path = f"{group}.{name}"
            aliases = tuple(a for a in (name if model.flat else None, fanned.get(path))
                            if a and a != path)
            bare = model.flat and name not in FAN_OUT
            flag = "--" + (name if bare else f"{group}-{name}").replace("_", "-")
            specs.append(_spec(path, group, name, info, tuple(dict.fromkeys(aliases)), flag))
    return specs


def describe() -> dict[str, Any]:
    """``GET /v1/options``: formats, levels with a one-line meaning each, and every option."""
    from squeezer.engines.families import FAMILIES

    return {
        "levels": [level.value for level in Level],
        "default_level": DEFAULT_LEVEL.value,
        "deprecated": {"options": {k: "level" for k, dep in LEVEL_ALIASES.items() if dep},
                       "levels": {k: v.value for k, v in DEPRECATED_LEVELS.items()}},
        "formats": [family.as_json() for family in FAMILIES],
        "groups": {group: group_model(group).title for group in group_names()},
        "options": [spec.as_json() for spec in option_specs()],
    }
