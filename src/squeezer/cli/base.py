"""What every ``squeezer`` subcommand shares: the registry, :func:`main`, errors and formatting.

Each subcommand is one line of :data:`SUBCOMMANDS` (its name, the module that
defines it and its one-line help) and one :class:`Command` that module
registers with the :func:`command` decorator: a function that declares its
arguments and a function that runs it and returns the exit status.  Only the
module of the subcommand being run is imported, so ``squeezer --help`` does
not pay for the engines, asyncio or multiprocessing.

Rules every subcommand follows (DEVELOPERS.md, "bad input always gets a clear
error"): one line on stderr per failure, never a traceback; exit status 0 when
everything worked, 1 when something failed, 2 for usage errors (argparse's own
convention), 130 when interrupted.  Machine-readable output (``--json``) is the
only thing on stdout when asked for.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from squeezer import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: What the user can do about an error, by code; appended to its one line.
HINTS: dict[str, str] = {
    "password_required": "give --password",
    "invalid_password": "check --password",
    "input_too_large": "raise SQUEEZER_MAX_INPUT_BYTES to allow it",
    "too_many_pages": "raise SQUEEZER_MAX_PAGES to allow it",
    "image_too_large": "raise SQUEEZER_MAX_IMAGE_PIXELS to allow it",
    "decompression_limit":
        "raise SQUEEZER_MAX_STREAM_BYTES / SQUEEZER_MAX_DOCUMENT_BYTES to allow it",
    "timeout": "raise SQUEEZER_MAX_SECONDS to allow more time",
    # squeezer compress --server
    "unauthorized": "check --api-key or SQUEEZER_API_KEY",
    "server_unreachable": "check --server URL and that the server is running",
}


# --- the registry of subcommands ----------------------------------------------------------------


#: every subcommand: name -> (the module that defines it, its one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "compress": ("squeezer.cli.compress", "compress files (the engine is chosen from the bytes)"),
    "demo": ("squeezer.cli.demo", "compress a sample PDF made on the spot; print where it is"),
    "analyze": ("squeezer.cli.analyze",
                "show where a PDF's, container's, video's or audio's bytes are; estimate each level"),
    "options": ("squeezer.cli.info", "list the levels and every compression option"),
    "config": ("squeezer.cli.info", "print the effective configuration (secrets masked)"),
    "keys": ("squeezer.cli.keys", "create, list and revoke API keys"),
    "serve": ("squeezer.cli.service", "run the HTTP API and its workers on this machine"),
    "api": ("squeezer.cli.service", "run only the HTTP API (workers run elsewhere)"),
    "worker": ("squeezer.cli.service", "run a worker that takes compression jobs from the queue"),
}


@dataclass(frozen=True)
class Command:
    name: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, argparse.ArgumentParser], int]
    description: str = ""

    @property
    def help(self) -> str:
        return SUBCOMMANDS[self.name][1]


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    arguments: Callable[[argparse.ArgumentParser], None],
    description: str = "",
) -> Callable[[Callable[[argparse.Namespace, argparse.ArgumentParser], int]], Any]:
    """Register the decorated ``run(args, parser) -> exit status`` as subcommand ``name``
    (which :data:`SUBCOMMANDS` lists with its help)."""

    def register(run: Callable[[argparse.Namespace, argparse.ArgumentParser], int]) -> Any:
        COMMANDS[name] = Command(name, arguments, run, description or SUBCOMMANDS[name][1])
        return run

    return register


def load_command(name: str) -> Command:
    """The subcommand ``name``, its module imported on first use."""
    if name not in COMMANDS:
        importlib.import_module(SUBCOMMANDS[name][0])
    return COMMANDS[name]


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: the message and where to find help, no usage dump."""

    def error(self, message: str) -> NoReturn:
        text = f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n"
        self.exit(EXIT_USAGE, text)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand ``argv`` names (if any) gets its arguments and module
    loaded (``argv`` None: all of them, for tools that want the whole parser)."""
    parser = Parser(
        prog="squeezer",
        description="Self-hosted file compression: PDFs, images and more, smaller at the same "
        "visual quality, on your own machines.",
    )
    parser.add_argument("--version", action="version", version=f"squeezer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=Parser)
    chosen = None if argv is None else next((a for a in argv if a in SUBCOMMANDS), "")
    for name, (_, help_text) in SUBCOMMANDS.items():
        if chosen is None or name == chosen:
            cmd = load_command(name)
            sub = subparsers.add_parser(name, help=help_text, description=cmd.description)
            cmd.arguments(sub)
            sub.set_defaults(_run=cmd.run, _parser=sub)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``squeezer`` script and of ``python -m squeezer``."""
    _quiet_libraries()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # report an unknown flag from the subcommand, whose --help lists the flags
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    _stop_signals_interrupt()
    end_of_startup()
    try:
        return args._run(args, args._parser)
    except Terminated as exc:
        _stderr_line(f"interrupted ({exc.name})")
        return 128 + exc.signum
    except KeyboardInterrupt:
        _stderr_line("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (``squeezer ... | head``): stop quietly
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def run() -> None:
    """The ``squeezer`` script: :func:`main`, then exit.

    Python's cyclic garbage collector is off while the command starts (imports, the
    option and report models, the parser: objects that live as long as the process)
    and is turned back on by :func:`end_of_startup` once the command runs.  With
    it on, a cold ``squeezer compress`` of a small PDF spent ~30-50 ms of CPU in
    collections that found almost nothing, and its exit another full one (issue 18).

    After an interrupt, stderr is closed once the one "interrupted" line is
    out: an interpreter shutdown in the middle of native work lets libraries
    print teardown noise (pikepdf's object tracker) that would follow it.
    Shutdown itself runs normally, so worker pools and semaphores are released.
    A one-shot command (:data:`ONE_SHOT`) that ended normally exits through
    :func:`_quick_exit`; the servers' shutdown stays the interpreter's (connections and
    pools their objects close as they go).
    """
    one_shot = next((a for a in sys.argv[1:] if a in SUBCOMMANDS), None) in ONE_SHOT
    gc.disable()
    if one_shot:
        skip_pydantic_plugins()
        # numpy's OpenBLAS starts a thread per core when it loads (~25 ms of CPU, issue 18) for
        # the matrix products an engine does not use on PDFs (the image engine's are 3 x N);
        # the user's own setting stands
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        code = main()
    finally:
        end_of_startup()
    if code >= 128:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stderr.fileno())
    elif one_shot:
        _quick_exit(code)
    raise SystemExit(code)


#: Subcommands that read files and end (no server): pydantic's plugins are not looked for,
#: and a normal end skips the interpreter's teardown.
ONE_SHOT = ("compress", "analyze")


def skip_pydantic_plugins() -> None:
    """Let pydantic find no plugins without looking for them, unless
    ``PYDANTIC_DISABLE_PLUGINS`` is set (to anything: pydantic then decides, as always).

    Before it builds its first validator, pydantic imports :mod:`importlib.metadata` and
    reads every installed distribution's entry points for plugins (observability tools that
    watch validation): ~20 ms of a cold ``squeezer compress`` (issue 18), for the options
    and reports of a process that reads a file and ends.  Its one function is answered here
    with pydantic's own answer for no plugins (``()``).  Not for the servers (``serve``,
    ``worker``), whose validation a plugin may well be there to watch.
    """
    name = "pydantic.plugin._loader"
    if name in sys.modules or "PYDANTIC_DISABLE_PLUGINS" in os.environ:
        return
    import types

    loader = types.ModuleType(name, "pydantic's plugin loader, finding no plugins (squeezer.cli)")
    loader.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules[name] = loader


def end_of_startup() -> None:
    """Turn the garbage collector back on after :func:`run`'s start-up, with what start-up
    made frozen (:func:`gc.freeze`: never traversed again, as it is never garbage).

    Does nothing when the collector is on: :func:`main` called in-process (tests, tools)
    leaves the caller's collector as it is.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _quick_exit(code: int) -> None:
    """End the process without the interpreter's teardown, when nothing needs it.

    Tearing the interpreter down (a last collection, every module's objects freed one by
    one: pydantic's, PDFium's, qpdf's) cost a cold ``squeezer compress`` ~30-50 ms of CPU
    for a process about to vanish (issue 18).  What exit must still do is done here:
    the ``atexit`` functions run (temporary directories, logging, multiprocessing's
    clean-up) and stdout and stderr are flushed.  Returns, for the ordinary exit, when
    another thread or a child process still runs, or when the streams cannot be
    flushed (the exit status must then say so, as Python's own exit does).
    """
    if any(t is not threading.main_thread() and t.is_alive() and not t.daemon
           for t in threading.enumerate()):
        return
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.active_children():
        return
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed or broken stream: Python's exit reports it
        return
    os._exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: stop like Ctrl-C (workers stopped, temporary files removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _stop_signals_interrupt() -> None:
    """Make ``kill`` and a closed terminal unwind like Ctrl-C instead of killing outright."""
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        with contextlib.suppress(ValueError, OSError):  # not the main thread, or not allowed
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _raise_terminated)


def _quiet_libraries() -> None:
    """Keep library chatter (qpdf warnings, Python warnings) off the user's terminal.

    What matters reaches the user through reports and error lines; a stray
    warning would break the one-line-per-failure rule and the ``--json`` contract.
    """
    import logging

    warnings.simplefilter("ignore")
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger().setLevel(logging.CRITICAL)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _stderr_line(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def error_line(name: str, code: str, message: str) -> str:
    """``error: NAME: CODE: MESSAGE; HINT`` on one line."""
    hint = HINTS.get(code)
    text = f"error: {name}: {code}: {_one_line(message)}"
    return f"{text}; {hint}" if hint else text


#: Prefix of the configuration's environment variables (:mod:`squeezer.config`).
CONFIG_PREFIX = "SQUEEZER_"


def load_config(parser: argparse.ArgumentParser) -> Any:
    """The configuration (:func:`squeezer.config.load`: ``SQUEEZER_*`` variables), read once
    for the command; a value that does not parse is a usage error, like a bad flag."""
    from pydantic import ValidationError

    from squeezer.config import config_problems, load

    try:
        return load()
    except ValidationError as exc:
        parser.error(f"invalid configuration: {config_problems(exc)}")


def engine_limits(parser: argparse.ArgumentParser) -> tuple[Any, int]:
    """The engines' limits and the CLI's memory cap: what ``compress`` and ``analyze`` need
    of the configuration (its ``limits`` and ``engines`` sections, applied to the engines).

    With no ``SQUEEZER_*`` variable set, every setting is its default and the full
    configuration (pydantic-settings and the service's sections: ~0.1 s of a cold start,
    issue 18) is not imported; with any set, :func:`load_config` reads it all, so an
    invalid value is reported as before.
    """
    if not any(name.upper().startswith(CONFIG_PREFIX) for name in os.environ):
        from squeezer.engines.limits import CLI_MEMORY_BYTES, Limits

        return Limits(), CLI_MEMORY_BYTES
    config = load_config(parser)
    return config.limits.limits(), config.limits.cli_memory_bytes


# --- formatting helpers -------------------------------------------------------------------------


def human_bytes(n: int | None) -> str:
    """``1234567`` → ``1.23 MB`` (decimal units, as in ``--target-size 2MB``)."""
    if n is None:
        return "-"
    if abs(n) < 1000:
        return f"{n} B"
    size: float = n
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.3g} {unit}" if abs(size) < 100 else f"{size:.0f} {unit}"
    return f"{n} B"  # pragma: no cover


def saved_percent(before: int, after: int) -> str:
    if not before:
        return "-"
    return f"{(1 - after / before) * 100:.1f}%"


def stderr_is_plain() -> bool:
    """True when rich would find no terminal on stderr: not a tty, and neither
    ``TTY_COMPATIBLE=1`` nor ``FORCE_COLOR`` asks for one.  ``compress --json`` then needs no
    rich console (no bars, error lines are plain), whose import cost a cold start ~0.05 s of
    CPU (issue 18)."""
    return _is_plain(sys.stderr)


def stdout_is_plain() -> bool:
    """:func:`stderr_is_plain` for stdout: ``compress``'s summary is then plain text."""
    return _is_plain(sys.stdout)


def _is_plain(stream: Any) -> bool:
    if os.environ.get("TTY_COMPATIBLE") == "1" or "FORCE_COLOR" in os.environ:
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def _consoles() -> tuple[Any, Any]:
    """Rich consoles for stdout and stderr; plain, unwrapped text when not on a terminal."""
    from rich.console import Console

    out = Console(file=sys.stdout, highlight=False)
    if not out.is_terminal:
        out = Console(file=sys.stdout, highlight=False, width=240, color_system=None)
    err = Console(file=sys.stderr, highlight=False)
    return out, err


def _arrow(console: Any) -> str:
    return "→" if (console.encoding or "").lower().startswith("utf") else "->"




def cap_memory(max_bytes: int) -> None:
    """Cap this process's address space (and its children's: the limit is inherited) at
    ``max_bytes``, so that a file that makes an engine allocate without bound fails with
    ``memory_limit`` instead of taking the machine (a lying image header asked for 12 GB).

    Address space, not resident memory: the OS can enforce it on the allocation
    itself, which no watcher can for one huge ``malloc``.  0 or a lower existing
    limit leaves things as they are.
    """
    if not max_bytes:
        return
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft <= max_bytes:
            return
        cap = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: no cap
        pass
