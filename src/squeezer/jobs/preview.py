"""A page preview rendered in a disposable child process with hard limits.

The web page's before/after preview needs a picture of a page of the upload
and of the result.  The input is untrusted, so the render
(:func:`squeezer.engines.pdf.render.render_page_png`) runs the way the
engine's jobs do (:mod:`squeezer.jobs.isolation`): in a child forked from a
``forkserver``, under an address-space cap, watched for resident memory and
killed at a deadline.  The API process only waits (in a thread); every way the
child can end is a named error (:mod:`squeezer.errors`).
"""

from __future__ import annotations

import multiprocessing
import resource
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from squeezer import forkserver
from squeezer.engines.errors import MemoryLimitError, ProcessingCrashedError, TimeLimitError
from squeezer.errors import SqueezerError, error_from_code
from squeezer.jobs.isolation import ADDRESS_SPACE_FACTOR, PRELOAD, supervise

#: Wall-clock seconds one render may take, and the memory it may use.
RENDER_SECONDS = 20.0
RENDER_MEMORY_BYTES = 768 << 20


@dataclass(frozen=True)
class RenderLimits:
    seconds: float = RENDER_SECONDS
    memory_bytes: int = RENDER_MEMORY_BYTES


def _child(conn: Connection, path: str, page_number: int, width: int, password: str | None,
           memory_bytes: int) -> None:
    try:
        if memory_bytes:
            cap = memory_bytes * ADDRESS_SPACE_FACTOR
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        from squeezer.engines.pdf.render import render_page_png

        conn.send(("ok", render_page_png(path, page_number, width, password)))
    except SqueezerError as exc:
        conn.send(("error", exc.code, exc.message))
    except MemoryError:
        conn.send(("error", MemoryLimitError.code,
                   "the page needs more memory than a preview may use"))
    except BaseException as exc:  # noqa: BLE001 - everything crosses the pipe as a named error
        conn.send(("error", "preview_failed", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        conn.close()


def _context() -> multiprocessing.context.ForkServerContext:
    ctx: multiprocessing.context.ForkServerContext = forkserver.context()
    # One forkserver per process serves every user of the context, with the preload list
    # of whoever starts it first: name the engine's too (squeezer.jobs.isolation), so that
    # a process that also runs engine jobs (a test run) keeps its children warm either way.
    ctx.set_forkserver_preload([*PRELOAD, "squeezer.engines.pdf.render"])
    return ctx


def render_isolated(path: str | Path, page_number: int = 1, width: int = 600,
                    password: str | None = None, limits: RenderLimits | None = None) -> bytes:
    """Render one page in a child process under ``limits``; blocking (call it in a thread).

    Raises the render's named errors, :class:`TimeLimitError`,
    :class:`MemoryLimitError` or :class:`ProcessingCrashedError`.
    """
    limits = limits or RenderLimits()
    run = supervise(_context(), _child, (str(path), page_number, width, password,
                                         limits.memory_bytes),
                    seconds=limits.seconds, memory_bytes=limits.memory_bytes)
    outcome, ended = run.outcome, run.ended
    if ended == "timeout":
        raise TimeLimitError(f"the page took longer than {limits.seconds:g} s to render")
    if ended == "memory":
        raise MemoryLimitError("the page needs more memory than a preview may use")
    if outcome is None:
        raise ProcessingCrashedError(f"the renderer {run.how} without an answer")
    if outcome[0] == "ok":
        png: bytes = outcome[1]
        return png
    raise error_from_code(outcome[1], outcome[2])
