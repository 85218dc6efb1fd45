"""The command line: ``squeezer compress | demo | analyze | options | config | keys | serve | api | worker``.

:mod:`squeezer.cli.base` holds the registry (:data:`~squeezer.cli.base.SUBCOMMANDS`),
:func:`main` and the rules every subcommand follows; each subcommand is a
module here that registers itself with :func:`~squeezer.cli.base.command` and
is imported only when it runs.
"""

from squeezer.cli.base import COMMANDS, SUBCOMMANDS, main, run

__all__ = ["COMMANDS", "SUBCOMMANDS", "main", "run"]
