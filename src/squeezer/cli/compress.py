"""``squeezer compress``: many files, progress bars, worker processes, one line per failure."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue as queues
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from squeezer.cli.base import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    _arrow,
    _consoles,
    _one_line,
    _quiet_libraries,
    _stderr_line,
    cap_memory,
    command,
    engine_limits,
    error_line,
    human_bytes,
    saved_percent,
    stderr_is_plain,
    stdout_is_plain,
)

# --- squeezer compress --------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _compress_arguments(p: argparse.ArgumentParser) -> None:
    from squeezer.cli.options import add_option_flags

    p.add_argument("inputs", nargs="+", metavar="IN",
                   help="files to compress (the engine is chosen from the bytes)")
    where = p.add_argument_group("where results go (default: X.pdf -> X.compressed.pdf, "
                                 "X.png -> X.compressed.png (.webp with --format webp) next to it)")
    dest = where.add_mutually_exclusive_group()
    dest.add_argument("-o", "--output", metavar="OUT", help="output file (exactly one input)")
    dest.add_argument("--out-dir", metavar="DIR",
                      help="write results into DIR (created), under the inputs' names")
    dest.add_argument("--in-place", action="store_true", help="replace each input with its result")
    add_option_flags(p)

    run = p.add_argument_group("running")
    run.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                     help="compress N files at a time, in separate processes (default: 1)")
    run.add_argument("--json", action="store_true",
                     help="print a JSON array of reports on stdout instead of the table")

    remote = p.add_argument_group("through a Squeezer server (the files are compressed there)")
    remote.add_argument("--server", metavar="URL",
                        help="send each file to the Squeezer API at URL instead of compressing "
                        "here; --jobs N keeps N files in flight")
    remote.add_argument("--api-key", metavar="KEY",
                        help="the server's API key (default: the SQUEEZER_API_KEY variable)")


@dataclass
class Job:
    """One input of a batch and where its result goes."""

    index: int
    name: str  #: the input as the user typed it
    src: Path
    dst: Path


#: The planned output name's suffix when only the run knows the format (``--format auto``);
#: :func:`compress_one` renames the result to the real extension.
AUTO_SUFFIX = ".squeezer-auto"


def default_output(src: Path, extension: str | None = "pdf") -> Path:
    """``X.pdf`` → ``X.compressed.pdf`` next to the input; ``X.png`` → ``X.compressed.png``
    (or ``.webp`` ... when the format changes; ``extension`` None: decided by the run)."""
    if extension is None:
        return src.with_name(f"{src.stem}.compressed{src.suffix}{AUTO_SUFFIX}")
    if _same_extension(src.suffix, extension):
        return src.with_name(f"{src.stem}.compressed{src.suffix}")
    if extension == "pdf":
        return src.with_name(f"{src.name}.compressed.pdf")
    return src.with_name(f"{src.stem}.compressed.{extension}")


def _same_extension(suffix: str, extension: str) -> bool:
    from squeezer.engines.sniff import ALIASES

    suffix = suffix.lower().lstrip(".")
    return suffix == extension or any(suffix in names and extension in names
                                      for names in ALIASES.values())


def _output_extension(src: Path, options: Any) -> str | None:
    """The output's extension from the input's bytes and the options (``pdf`` when unreadable:
    the run then reports the real problem)."""
    from squeezer.engines.dispatch import output_extension
    from squeezer.engines.errors import EngineError

    try:
        return output_extension(src, options)
    except (EngineError, OSError):
        return "pdf" if src.suffix.lower() == ".pdf" else (src.suffix.lower().lstrip(".") or "pdf")


def _key(path: Path) -> str:
    """A path's identity for collision checks: absolute, symlinks resolved, case-normalised."""
    return os.path.normcase(str(Path(path).resolve()))


def _inode(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def plan_outputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Job]:
    """Decide every output path before any work; every collision is a usage error."""
    inputs: list[str] = args.inputs
    if args.output is not None and len(inputs) != 1:
        parser.error(f"-o/--output takes exactly one input, not {len(inputs)}; "
                     "use --out-dir DIR for several")
    if args.output is not None and Path(args.output).is_dir():
        parser.error(f"-o {args.output} is a directory; use --out-dir {args.output}")
    out_dir = Path(args.out_dir) if args.out_dir else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        parser.error(f"--out-dir {out_dir}: exists and is not a directory")
    jobs = []
    options = getattr(args, "compress_options", None)
    # --format auto: inputs sharing a stem (p.jpg, p.webp) keep their whole name in the output's,
    # since both may come out as the same format
    stems: dict[str, int] = {}
    for name in inputs:
        stems[_key(Path(name).with_suffix(""))] = stems.get(_key(Path(name).with_suffix("")), 0) + 1
    for index, name in enumerate(inputs):
        src = Path(name)
        extension = _output_extension(src, options) if src.is_file() else "pdf"
        shared_stem = stems[_key(src.with_suffix(""))] > 1
        if args.in_place:
            dst = src
        elif args.output is not None:
            dst = Path(args.output)
        elif out_dir is not None:
            if extension is None:
                base = f"{src.name}{src.suffix}" if shared_stem else src.name
                dst = out_dir / f"{base}{AUTO_SUFFIX}"
            elif _same_extension(src.suffix, extension) or extension == "pdf":
                dst = out_dir / src.name
            else:
                dst = out_dir / f"{src.stem}.{extension}"
        elif extension is None and shared_stem:
            dst = src.with_name(f"{src.name}.compressed{src.suffix}{AUTO_SUFFIX}")
        else:
            dst = default_output(src, extension)
        jobs.append(Job(index, name, src, dst))

    input_keys = {_key(job.src): job.name for job in jobs}
    input_inodes = {_inode(job.src): job.name for job in jobs if job.src.is_file()}
    written: dict[str, Job] = {}
    for job in jobs:
        key = _key(job.dst)
        if key not in input_keys and job.dst.is_file() and _inode(job.dst) in input_inodes:
            input_keys[key] = input_inodes[_inode(job.dst)]  # a hard link to an input
        if not args.in_place and key in input_keys:
            parser.error(f"{job.name}: the output {job.dst} is an input ({input_keys[key]}); "
                         "refusing to overwrite it (use --in-place to replace inputs, "
                         "or choose another -o/--out-dir)")
        if key in written:
            parser.error(f"{written[key].name} and {job.name} would both be written to {job.dst}")
        written[key] = job
    return jobs


def compress_one(src: str, dst: str, options: Any, limits: Any,
                 progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """Compress one file and describe the outcome as plain data; never raises an ordinary error.

    Runs in the CLI's process or in a worker process, so everything it returns pickles.
    """
    from squeezer.engines.dispatch import compress_any as compress
    from squeezer.engines.dispatch import library_error
    from squeezer.engines.errors import EngineError
    from squeezer.engines.malloc import keep_freed_memory

    keep_freed_memory()  # a process that compresses (engines.malloc)
    source, target = Path(src), Path(dst)
    if not source.exists():
        return _failure("file_not_found", "no such file")
    if source.is_dir():
        return _failure("invalid_input", "is a directory, not a file to compress")
    if not source.is_file():
        return _failure("invalid_input", "is not a regular file")
    if not target.parent.is_dir():
        return _failure("invalid_output", f"the output directory {target.parent} does not exist")
    # the user's own paths stay as typed; the engine's temporary ones are shortened
    names = {str(source.resolve()): src, str(target.resolve()): dst}
    try:
        report = compress(source, target, options, limits=limits, progress=progress)
    except EngineError as exc:
        return _failure(exc.code, exc.message, names)
    except (KeyboardInterrupt, SystemExit):
        raise
    except PermissionError as exc:
        return _failure("permission_denied", f"{exc.strerror}: {exc.filename}", names)
    except Exception as exc:  # noqa: BLE001 - one line per file, never a traceback
        named = library_error(exc)
        if named is not None:  # a full disk while writing the result, a refused allocation
            return _failure(named.code, named.message, names)
        if isinstance(exc, OSError):
            return _failure("io_error", f"{exc.strerror or exc}: {exc.filename or ''}"
                            .rstrip(": "), names)
        return _failure("internal_error", f"{type(exc).__name__}: {exc}", names)
    outcome: dict[str, Any] = {"ok": True, "report": report.model_dump(mode="json")}
    if target.name.endswith(AUTO_SUFFIX):
        from squeezer.engines.sniff import EXTENSIONS

        planned = Path(target.name.removesuffix(AUTO_SUFFIX))  # X.compressed.png
        final = target.with_name(planned.stem + "."
                                 + EXTENSIONS[getattr(report, "format_out", "") or "pdf"])
        if final.exists() and os.path.samefile(final, source):
            target.unlink(missing_ok=True)
            return _failure("invalid_output", f"the output {final} is the input")
        os.replace(target, final)
        outcome["output"] = str(final)
    return outcome


def _failure(code: str, message: str, names: dict[str, str] | None = None) -> dict[str, Any]:
    from squeezer.errors import public_message

    return {"ok": False, "error": {"code": code, "message": public_message(message, names)}}


class BatchDisplay:
    """Live bars on a terminal (one per file being compressed and one for the batch), error lines.

    Off a terminal there are no bars at all, only the error lines: logs and
    pipes get clean text.
    """

    def __init__(self, jobs: list[Job], console: Any, live: bool) -> None:
        self.jobs = {job.index: job for job in jobs}
        self.console = console
        self.live = live
        self.progress: Any = None
        self.tasks: dict[int, Any] = {}
        self.fractions: dict[int, float] = {}
        #: files a worker has begun (a crashed pool only re-runs these in isolation)
        self.started: set[int] = set()
        self.finished_jobs: set[int] = set()
        self.done = 0

    def __enter__(self) -> Self:
        if self.live:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}", style="bold"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stage]}", style="dim"),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.total = self.progress.add_task(
                f"{len(self.jobs)} file{'s' if len(self.jobs) != 1 else ''}",
                total=len(self.jobs), stage="",
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def update(self, index: int, fraction: float, stage: str) -> None:
        if index in self.finished_jobs:
            return  # a late message from a worker, after its result
        self.started.add(index)
        if self.progress is None or index not in self.jobs:
            return
        if index not in self.tasks:
            self.tasks[index] = self.progress.add_task(
                _shorten(self.jobs[index].name), total=1.0, stage=stage
            )
        self.fractions[index] = max(0.0, min(float(fraction), 1.0))
        self.progress.update(self.tasks[index], completed=self.fractions[index], stage=stage)
        self._overall()

    def finished(self, index: int, outcome: dict[str, Any]) -> None:
        self.finished_jobs.add(index)
        self.done += 1
        if self.progress is not None:
            task = self.tasks.pop(index, None)
            if task is not None:
                self.progress.remove_task(task)
            self.fractions.pop(index, None)
            self._overall()
        if not outcome["ok"]:
            err = outcome["error"]
            self.line(error_line(self.jobs[index].name, err["code"], err["message"]))

    def line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            _stderr_line(text)

    def _overall(self) -> None:
        self.progress.update(self.total, completed=self.done + sum(self.fractions.values()))


def _shorten(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


# worker-process side of --jobs ------------------------------------------------------------------

#: What a worker needs warm: the forkserver imports these once and every worker is forked from
#: it, so N workers (and the fresh pool after a crash) pay for one import of the PDF engine
#: (pikepdf, PDFium, numpy, Pillow: ~0.5 s of CPU each otherwise), and each worker then
#: keeps it, and what its files load (PDFium's fonts, the JBIG2 coder), for every next file.
WORKER_PRELOAD = ["squeezer.cli.compress", "squeezer.engines.dispatch",
                  "squeezer.engines.pdf.pipeline", "squeezer.engines.pdf.images",
                  "squeezer.engines.pdf.scans"]


def _pool_context() -> Any:
    """Forkserver with the engine preloaded where there is one (Linux, macOS), else spawn.

    (multiprocessing is imported here, for ``--jobs N``: one file in this process needs none
    of it, issue 18.)
    """
    import multiprocessing

    from squeezer import forkserver

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = forkserver.context()
        context.set_forkserver_preload(WORKER_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


_PROGRESS_QUEUE: Any = None
_IN_JOB = False


def _worker_init(progress_queue: Any, scratch: str, engine_runtime: dict[str, Any]) -> None:
    """Set up a worker: progress goes to the parent; Ctrl-C is the parent's business.

    SIGTERM (the parent cancelling the batch) unwinds a running compression
    like an exception, so the engine removes its temporary files; an idle
    worker just exits.  Temporary files go to the batch's scratch directory,
    which the parent removes at the end, so even a worker that is killed
    outright leaves nothing behind.
    """
    global _PROGRESS_QUEUE
    from squeezer.engines import runtime

    runtime.configure(**engine_runtime)  # the parent's configuration, not read again here
    _PROGRESS_QUEUE = progress_queue
    tempfile.tempdir = scratch
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _quiet_libraries()


def _on_sigterm(signum: int, frame: object) -> None:
    if _IN_JOB:
        raise KeyboardInterrupt
    os._exit(EXIT_INTERRUPTED)


def _pool_job(index: int, src: str, dst: str, options: Any, limits: Any) -> dict[str, Any]:
    global _IN_JOB
    progress_queue = _PROGRESS_QUEUE

    def progress(fraction: float, stage: str) -> None:
        with contextlib.suppress(Exception):
            progress_queue.put_nowait((index, fraction, stage))

    _IN_JOB = True
    try:
        progress(0.0, "starting")
        return compress_one(src, dst, options, limits, progress)
    except KeyboardInterrupt:
        # cancelled by the parent: the engine has cleaned up while unwinding
        os._exit(EXIT_INTERRUPTED)
    finally:
        _IN_JOB = False


# parent side -------------------------------------------------------------------------------------


def _drain(progress_queue: Any, display: BatchDisplay) -> None:
    while True:
        try:
            index, fraction, stage = progress_queue.get_nowait()
        except (queues.Empty, EOFError, OSError, ValueError):
            return
        display.update(index, fraction, stage)


@contextlib.contextmanager
def _sigint_ignored() -> Any:
    """Ignore Ctrl-C while worker processes are started, so they inherit "ignore" from birth."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_workers(executor: futures.ProcessPoolExecutor, jobs: Iterable[Job]) -> None:
    """Cancel what has not started, stop the workers, remove any half-written output."""
    processes = list(getattr(executor, "_processes", {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + 5
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(max(deadline - time.monotonic(), 0.1))
            if process.is_alive():
                process.kill()
                process.join(1)
    sweep_partial(jobs)


def sweep_partial(jobs: Iterable[Job]) -> None:
    """Remove the temporary file a worker killed while moving a result into place leaves."""
    for job in jobs:
        with contextlib.suppress(OSError):
            for leftover in job.dst.parent.glob(f".{job.dst.name}.*.part"):
                leftover.unlink()


def _run_pool(jobs: list[Job], workers: int, options: Any, limits: Any, display: BatchDisplay,
              progress_queue: Any, scratch: str, results: dict[int, dict[str, Any]]) -> list[Job]:
    """Run ``jobs`` on ``workers`` processes; return the jobs lost to a crashed worker."""
    context = _pool_context()
    executor = futures.ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context,
        initializer=_worker_init,
        initargs=(progress_queue, scratch, _runtime_settings()),
    )
    crashed: list[Job] = []
    try:
        with _sigint_ignored():
            running = {
                executor.submit(
                    _pool_job, job.index, str(job.src), str(job.dst), options, limits
                ): job
                for job in jobs
            }
        pending = set(running)
        while pending:
            done, pending = futures.wait(pending, timeout=0.1, return_when=futures.FIRST_COMPLETED)
            _drain(progress_queue, display)
            for future in done:
                job = running[future]
                try:
                    outcome = future.result()
                except futures.process.BrokenProcessPool:
                    crashed.append(job)
                    continue
                except Exception as exc:  # noqa: BLE001 - e.g. a result that did not unpickle
                    outcome = _failure("internal_error", f"{type(exc).__name__}: {exc}")
                results[job.index] = outcome
                display.finished(job.index, outcome)
        _drain(progress_queue, display)
    except BaseException:
        with _sigint_ignored():  # a second Ctrl-C must not cut the clean-up short
            _stop_workers(executor, jobs)
        raise
    executor.shutdown(wait=True)
    return crashed


def _runtime_settings() -> dict[str, Any]:
    from squeezer.engines import runtime

    return runtime.current.model_dump()


def run_parallel(jobs: list[Job], workers: int, options: Any, limits: Any,
                 display: BatchDisplay) -> dict[int, dict[str, Any]]:
    """Compress in worker processes; a file that crashes its worker fails alone.

    A native crash breaks the whole pool.  Files that had not started yet go to
    a fresh pool; those that were running are run again one by one, each in a
    fresh process, to find the one to blame.
    """
    context = _pool_context()
    progress_queue = context.Queue()
    scratch = tempfile.mkdtemp(prefix="squeezer-batch-")
    results: dict[int, dict[str, Any]] = {}
    try:
        remaining, rounds = jobs, 0
        while remaining:
            rounds += 1
            crashed = _run_pool(remaining, workers, options, limits, display, progress_queue,
                                scratch, results)
            sweep_partial(crashed)
            # "started" is only known from progress messages, which a crash can lose:
            # after a second broken pool, every casualty is run alone
            suspects = [job for job in crashed if job.index in display.started or rounds > 1]
            unstarted = [job for job in crashed if job not in suspects]
            if crashed and not suspects:
                # no casualty was seen starting, but a crash can lose the progress messages
                # (on a loaded machine they are still in the queue): one more pool for them;
                # in that round every casualty is a suspect and runs alone
                remaining = crashed
                continue
            for job in suspects:
                if _run_pool([job], 1, options, limits, display, progress_queue, scratch, results):
                    _fail(display, results, job, "the worker process crashed on this file")
            remaining = unstarted
    finally:
        progress_queue.close()
        with contextlib.suppress(Exception):
            progress_queue.join_thread()
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def _fail(
    display: BatchDisplay, results: dict[int, dict[str, Any]], job: Job, message: str
) -> None:
    outcome = _failure("internal_error", message)
    results[job.index] = outcome
    display.finished(job.index, outcome)


def run_sequential(jobs: list[Job], options: Any, limits: Any,
                   display: BatchDisplay) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    for job in jobs:
        display.update(job.index, 0.0, "starting")

        def progress(fraction: float, stage: str, i: int = job.index) -> None:
            display.update(i, fraction, stage)

        try:
            outcome = compress_one(str(job.src), str(job.dst), options, limits, progress)
        except BaseException:
            # an interrupt between a temporary file's creation and the guard that removes it
            # (seen once under load: tests/test_cli.py::test_ctrl_c_stops_cleanly)
            sweep_partial([job])
            raise
        results[job.index] = outcome
        display.finished(job.index, outcome)
    return results


def _note(report: dict[str, Any]) -> str:
    notes = []
    if report.get("original_kept"):
        notes.append("original kept")
    if report.get("target_reached") is False:
        notes.append("target not reached")
    scans = _scan_note(report.get("scan_pages") or [])
    if scans:
        notes.append(scans)
    warned = len(report.get("warnings") or [])
    if warned:
        notes.append(f"{warned} warning{'s' if warned != 1 else ''}")
    return ", ".join(notes)


def _scan_note(pages: list[dict[str, Any]]) -> str:
    """``3 scan pages (2 mrc, 1 bitonal)`` when the scan step re-encoded any page, else ""."""
    methods: dict[str, int] = {}
    for page in pages:
        method = str(page.get("method") or "plain")
        methods[method] = methods.get(method, 0) + 1
    if not set(methods) - {"plain"}:
        return ""
    order = sorted(methods, key=lambda m: (m == "plain", -methods[m], m))
    count = len(pages)
    return (f"{count} scan page{'s' if count != 1 else ''} ("
            + ", ".join(f"{methods[m]} {m}" for m in order) + ")")


def _extent(report: dict[str, Any]) -> str:
    """How much a file holds, in its family's own unit: ``12 pages``, ``1920x1080 0:42``,
    ``3:05``, ``44 members``, ``800x600`` (empty when the report does not say)."""
    kind = report.get("kind")
    duration = report.get("duration") or 0.0
    clock = f"{int(duration) // 60}:{int(duration) % 60:02d}" if duration else ""
    if "pages" in report and kind in (None, "pdf"):
        pages = int(report["pages"])
        return f"{pages} page{'s' if pages != 1 else ''}"
    if kind == "video":
        return " ".join(x for x in (f"{report.get('width', 0)}x{report.get('height', 0)}", clock) if x)
    if kind == "audio":
        return clock
    if kind == "archive":
        members = int(report.get("members_total") or len(report.get("members") or []))
        return f"{members} member{'s' if members != 1 else ''}"
    if report.get("width") and report.get("height"):
        return f"{report['width']}x{report['height']}"
    return ""


#: The summary's columns: header and justification.
SUMMARY_COLUMNS = (("file", "left"), ("extent", "right"), ("before", "right"),
                   ("after", "right"), ("saved", "right"), ("time", "right"), ("note", "left"))
#: Width of the text a plain (not terminal) stdout gets, as :func:`~squeezer.cli.base._consoles`.
PLAIN_WIDTH = 240


def print_summary(console: Any, jobs: list[Job], results: dict[int, dict[str, Any]],
                  elapsed: float) -> None:
    """The table of files and the total line on stdout.

    ``console`` None (stdout is no terminal): the table is written as plain text, the
    text rich would write there, without importing rich (~25 ms of a cold run, issue 18);
    rich still writes what plain text would not say the same (markup-like or non-ASCII
    names, a table wider than the page).
    """
    rows: list[tuple[list[str], bool]] = []
    before = after = failed = 0
    for job in jobs:
        outcome = results.get(job.index)
        if outcome is None:
            continue
        if outcome["ok"]:
            r = outcome["report"]
            before += r["input_bytes"]
            after += r["output_bytes"]
            rows.append(([job.name, _extent(r), human_bytes(r["input_bytes"]),
                          human_bytes(r["output_bytes"]),
                          saved_percent(r["input_bytes"], r["output_bytes"]),
                          f"{r['elapsed_seconds']:.1f} s", _note(r)], False))
        else:
            failed += 1
            src_bytes = job.src.stat().st_size if job.src.is_file() else None
            rows.append(([job.name, "", human_bytes(src_bytes), "", "", "",
                          f"failed: {outcome['error']['code']}"], True))
    ok = len(results) - failed
    plain = _plain_table(rows) if console is None else None
    if console is None and plain is None:
        console, _ = _consoles()
    arrow = _arrow(console) if console is not None else (
        "→" if (getattr(sys.stdout, "encoding", "utf-8") or "utf-8").lower().startswith("utf")
        else "->")
    line = (f"total: {ok} file{'s' if ok != 1 else ''} compressed, {human_bytes(before)} "
            f"{arrow} {human_bytes(after)}, saved {saved_percent(before, after)} "
            f"in {elapsed:.1f} s")
    if failed:
        line = f"{line}; {failed} failed" if ok else f"total: {failed} failed, none compressed"
    if plain is not None:
        sys.stdout.write(plain + line + "\n")
        sys.stdout.flush()
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("file", overflow="fold")
    for name, justify in SUMMARY_COLUMNS[1:]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for cells, failure in rows:
        table.add_row(*cells, style="red" if failure else None)
    console.print(table)
    console.print(line, markup=False, soft_wrap=True)


def _plain_table(rows: list[tuple[list[str], bool]]) -> str | None:
    """The summary table as rich lays it out for a plain stdout (:data:`PLAIN_WIDTH`
    columns, no colour), or None when rich's rendering could differ from this: a cell
    that is not printable ASCII or that rich would read as markup or an emoji code,
    or a table wider than the page (rich folds the file column)."""
    for cells, _ in rows:
        for cell in cells:
            if not (cell.isascii() and cell.isprintable()) or "[" in cell \
                    or cell.count(":") > 1:
                return None
    widths = [max([len(name)] + [len(cells[i]) for cells, _ in rows])
              for i, (name, _) in enumerate(SUMMARY_COLUMNS)]
    total = sum(widths) + 3 * (len(widths) - 1)  # (one space of padding, one of divider, one)
    if total > PLAIN_WIDTH:
        return None

    def line(cells: list[str]) -> str:
        return "   ".join(cell.ljust(width) if justify == "left" else cell.rjust(width)
                          for cell, width, (_, justify) in zip(cells, widths, SUMMARY_COLUMNS))

    out = [line([name for name, _ in SUMMARY_COLUMNS]), "─" * total]
    out += [line(cells) for cells, _ in rows]
    return "\n".join(out) + "\n"


@command(
    "compress",
    arguments=_compress_arguments,
    description="Compress PDF and image files (JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP, SVG; "
    "the engine is chosen from each file's bytes). Each X.pdf is written to X.compressed.pdf "
    "(X.jpg to X.compressed.jpg, with the output format's extension) next to it "
    "unless -o, --out-dir or --in-place says otherwise; an input is never overwritten "
    "without --in-place.",
)
def run_compress(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from squeezer.cli.options import options_from_flags

    options = options_from_flags(args, parser)
    args.compress_options = options  # output names follow the output format
    for notice in options.notices:
        _stderr_line(f"squeezer compress: warning: {notice}")
    if args.api_key and not args.server:
        parser.error("--api-key is only for --server URL")
    remote = None
    if args.server:
        from squeezer.cli.remote import open_batch

        remote = open_batch(args, parser, options)  # the server picks the engine, as here
    # a server applies its own limits; here, the configuration's (and its engine choices)
    limits = None
    if not remote:
        limits, memory = engine_limits(parser)
        cap_memory(memory)  # this process and its worker processes
    jobs = plan_outputs(args, parser)
    if remote is not None:
        problem = remote.check()
        if problem:
            _stderr_line(problem)
            remote.close()
            return EXIT_FAILED
    if args.out_dir:
        try:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _stderr_line(f"error: --out-dir {args.out_dir}: {_one_line(exc.strerror or exc)}")
            return EXIT_FAILED
    if stderr_is_plain() and (args.json or stdout_is_plain()):
        # JSON or a plain table on stdout, plain error lines on stderr: rich is not loaded
        out = err = None
        live = False
    else:
        out, err = _consoles()
        live = err.is_terminal
    started = time.monotonic()
    with BatchDisplay(jobs, err, live=live) as display:
        if remote is not None:
            try:
                results = remote.run(jobs, args.jobs, display)
            finally:
                remote.close()
        elif args.jobs > 1 and len(jobs) > 1:
            # the cores are shared between the files in flight (limits are None only for a
            # server: the branch above)
            if limits is not None and limits.max_threads == 0:
                from squeezer.engines.threads import per_file

                limits = limits.model_copy(update={"max_threads": per_file(args.jobs)})
            results = run_parallel(jobs, args.jobs, options, limits, display)
        else:
            results = run_sequential(jobs, options, limits, display)
    elapsed = time.monotonic() - started
    if args.json:
        entries = []
        for job in jobs:
            outcome = results[job.index]
            if outcome["ok"]:
                entries.append({"input": job.name, "output": outcome.get("output", str(job.dst)),
                                "ok": True,
                                "report": outcome["report"]})
            else:
                entries.append({"input": job.name, "ok": False, "error": outcome["error"]})
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
        sys.stdout.flush()
    else:
        print_summary(out, jobs, results, elapsed)
    return EXIT_OK if all(r["ok"] for r in results.values()) else EXIT_FAILED


