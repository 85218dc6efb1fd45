"""``squeezer compress --server URL``: the same batch, each file compressed by a Squeezer server.

Everything the user sees is the local mode's (cli/compress.py): the output
paths and their collision checks, the progress bars, the summary table, the
``--json`` array, one ``error: FILE: CODE: message`` line per failed file and
the exit status.  Only the work moves: each file is uploaded, compressed by a
server's worker, and its result downloaded (verified, then renamed into
place) through :class:`squeezer.client.Client`, so the error codes are the
engine's own (``password_required``, ``not_a_pdf``…) plus the client's
(``server_unreachable``, ``unauthorized``, ``unsupported_format``…).

``--jobs N`` keeps N files in flight at once, in threads: the work is on the
server, the client only waits.  Ctrl-C stops every thread at its next chunk
or poll, cancels the server jobs it started and leaves no partial file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue as queues
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

from squeezer.cli.base import _one_line

#: seconds between status polls while a file is on the server (progress and Ctrl-C latency)
POLL_SECONDS = 1.0


class _Stopped(Exception):
    """Raised inside a file's thread once the batch was interrupted."""


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": _one_line(message)[:2000]}}


def wire_options(options: Any) -> dict[str, Any]:
    """The flags' :class:`~squeezer.engines.options.Options` as the API's ``options`` object:
    what differs from the defaults, nested.

    ``level`` is always sent, so that the result does not depend on the server's default.
    """
    values: dict[str, Any] = options.dump()
    values["level"] = options.level.value
    return values


def open_batch(args: argparse.Namespace, parser: argparse.ArgumentParser,
               options: Any) -> RemoteBatch:
    """The batch for ``--server``/``--api-key``; a missing key or a bad URL is a usage error."""
    from squeezer.client import SqueezerError

    key = args.api_key or os.environ.get("SQUEEZER_API_KEY", "").strip()
    if not key:
        parser.error("--server needs an API key: give --api-key KEY or set SQUEEZER_API_KEY")
    try:
        return RemoteBatch(args.server, key, options)
    except SqueezerError as exc:
        parser.error(f"--server {args.server}: {exc.message}")
        raise  # pragma: no cover - parser.error exits


class RemoteBatch:
    """One client for the batch; :meth:`run` has the signature of the local runners."""

    def __init__(self, server: str, key: str, options: Any) -> None:
        from squeezer.client import Client

        self.server = server
        self.client = Client(server, key)
        self.options = wire_options(options)
        self.stop = threading.Event()

    def close(self) -> None:
        self.client.close()

    def check(self) -> str | None:
        """Reach the server and check the key once, before any file: the error line, or None.

        Without it an unreachable server or a wrong key would print the same
        line once per file.
        """
        from squeezer.cli.base import error_line
        from squeezer.client import SqueezerError

        try:
            self.client.me()
        except SqueezerError as exc:
            return error_line(f"--server {self.server}", exc.code, exc.message)
        return None

    # the work of one file, in a thread ---------------------------------------------------------

    def one(self, src: Path, dst: Path, report: Any) -> dict[str, Any]:
        """Compress ``src`` into ``dst`` on the server; the outcome as the local runners give it."""
        from squeezer.client import InputError, SqueezerError, check_input_path

        try:
            check_input_path(src)
        except InputError as exc:
            message = {"file_not_found": "no such file",
                       "invalid_input": "is a directory, not a PDF file" if src.is_dir()
                       else "is not a regular file"}.get(exc.code, exc.message)
            return _failure(exc.code, message)
        if not dst.parent.is_dir():
            return _failure("invalid_output", f"the output directory {dst.parent} does not exist")

        def progress(stage: str, fraction: float) -> None:
            if self.stop.is_set():
                raise _Stopped()
            report(stage, fraction)

        job = None
        try:
            progress("starting", 0.0)
            job = self.client.submit(src, on_progress=progress, **self.options)
            job = self.client.wait(job, on_progress=progress, poll=POLL_SECONDS)
            self.client.download(job, dst, on_progress=progress)
        except _Stopped:
            if job is not None and not job.ended:
                with contextlib.suppress(SqueezerError):
                    self.client.cancel(job)
            return _failure("interrupted", "interrupted")
        except SqueezerError as exc:
            message = exc.message
            if exc.status is not None and exc.status >= 500 and exc.request_id:
                message += f" (request {exc.request_id})"
            return _failure(exc.code, message)
        except PermissionError as exc:
            return _failure("permission_denied", f"{exc.strerror}: {exc.filename}")
        except OSError as exc:
            return _failure("io_error", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        except Exception as exc:  # noqa: BLE001 - one line per file, never a traceback
            return _failure("internal_error", f"{type(exc).__name__}: {exc}")
        assert job.result is not None
        return {"ok": True, "report": job.result.report}

    # the batch, in the main thread -------------------------------------------------------------

    def run(self, jobs: list[Any], workers: int, display: Any) -> dict[int, dict[str, Any]]:
        """Up to ``workers`` files at once; progress reaches ``display`` from this thread only."""
        updates: queues.Queue[tuple[int, float, str]] = queues.Queue()
        stage_names = {"starting": "starting", "uploading": "uploading", "queued": "queued on the server",
                       "running": "compressing", "downloading": "downloading", "done": "done"}

        def reporter(index: int):
            def report(stage: str, fraction: float) -> None:
                shown = fraction if stage == "running" else (1.0 if stage in ("downloading",
                                                                            "done") else 0.0)
                label = stage_names.get(stage, stage)
                if stage in ("uploading", "downloading"):
                    label = f"{label} {fraction * 100:.0f}%"
                updates.put((index, shown, label))
            return report

        def drain() -> None:
            while True:
                try:
                    index, fraction, stage = updates.get_nowait()
                except queues.Empty:
                    return
                display.update(index, fraction, stage)

        results: dict[int, dict[str, Any]] = {}
        executor = futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs))),
                                              thread_name_prefix="squeezer-remote")
        try:
            running = {}
            for job in jobs:
                running[executor.submit(self.one, job.src, job.dst, reporter(job.index))] = job
            pending = set(running)
            while pending:
                done, pending = futures.wait(pending, timeout=0.1,
                                             return_when=futures.FIRST_COMPLETED)
                drain()
                for future in done:
                    job = running[future]
                    results[job.index] = future.result()
                    display.finished(job.index, results[job.index])
        except BaseException:
            # Ctrl-C / SIGTERM: every thread stops at its next chunk or poll and cleans up
            self.stop.set()
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
        return results
