"""The command line: ``squeezer compress | demo | analyze | options | config | keys | serve | api | worker``.

:mod:`squeezer.cli.base` holds the registry, :func:`main` and the rules every
subcommand follows; each subcommand is a module here that registers itself
with :func:`~squeezer.cli.base.command` when imported below.
"""

from squeezer.cli import analyze, compress, demo, info, keys, service  # noqa: F401 - registers them
from squeezer.cli.base import COMMANDS, main, run

__all__ = ["COMMANDS", "main", "run"]
