"""Process-wide engine choices that change how an engine works, never what it produces for
the caller: set once per process from the configuration (:meth:`squeezer.config.Config.apply_to_engines`),
and handed to every child process that runs an engine (job children, ``--jobs`` workers).

Engines read :data:`current`; they never read the environment themselves.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Runtime(BaseModel):
    model_config = ConfigDict(frozen=True)

    #: ``auto``: libimagequant when installed; ``pillow``: Pillow's own quantiser (no GPL code)
    quantizer: Literal["auto", "pillow"] = "auto"


current = Runtime()


def configure(**settings: object) -> None:
    """Replace :data:`current` (``configure(quantizer="pillow")``)."""
    global current
    current = Runtime.model_validate({**current.model_dump(), **settings})
