"""Python client of Squeezer's native HTTP API (``/v1``).

::

    from squeezer.client import Client

    with Client("http://127.0.0.1:8000", "sqz_...") as client:
        result = client.compress("report.pdf", level="high")   # -> report.compressed.pdf
        print(result.input_bytes, result.output_bytes, result.path)

The client speaks only the documented API (docs/api.md): ``POST /v1/files``
to upload, ``POST /v1/jobs`` to submit, ``GET /v1/jobs/{id}?wait=N`` to
long-poll, the result's signed ``download_url`` to fetch the output.  It is
synchronous on purpose: a script or a CLI waits for its files anyway, and a
thread pool (``squeezer compress --server --jobs N``) gives concurrency
without an event loop in the caller.

Failures are one exception hierarchy, :class:`SqueezerError`, carrying what
the server's uniform error body says (``status``, ``code``, ``message``,
``request_id`` — quote it when reporting a problem — and, for 422, the
``errors`` list).  Answers that say "try again later" (429, 503) are retried
after their ``Retry-After`` a bounded number of times, as are connections
that could not be made; a request that may already have had an effect is
only retried when that is harmless (reads, and job submission, which carries
an ``Idempotency-Key`` for exactly this reason).
"""

from __future__ import annotations

import builtins
import contextlib
import email.utils
import hashlib
import os
import random
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

import httpx

from squeezer import __version__

if TYPE_CHECKING:
    from squeezer.engines.options import Options

__all__ = [
    "APIError",
    "AuthenticationError",
    "Client",
    "Conflict",
    "ConnectionError",
    "FileInfo",
    "Gone",
    "InputError",
    "IntegrityError",
    "Job",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobResult",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimitError",
    "Result",
    "ServerError",
    "ServiceUnavailable",
    "SqueezerError",
    "UnsupportedType",
    "ValidationError",
    "WaitTimeout",
]

#: job states after which nothing changes any more
ENDED_STATES = frozenset({"succeeded", "failed", "cancelled"})
#: the server holds a long poll at most this long (``SQUEEZER_MAX_WAIT_SECONDS``' default);
#: asking for more is harmless, it is capped there
LONG_POLL_SECONDS = 60.0
#: a ``Retry-After`` longer than this is not waited out: the error goes to the caller
MAX_RETRY_AFTER = 120.0

ProgressCallback = Callable[[str, float], None]
"""``on_progress(stage, fraction)``: stage is ``uploading``, ``queued``, ``running``,
``downloading`` or ``done``; fraction is that stage's progress from 0 to 1 (for
``running``, the job's own ``progress``)."""


# --- errors ---------------------------------------------------------------------------------


class SqueezerError(Exception):
    """Anything that went wrong talking to Squeezer; ``code`` is stable, ``message`` is for people.

    ``status`` is the HTTP status (None when no answer came), ``request_id`` the
    server's id of the request (its log has the details under it).
    """

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 request_id: str | None = None, errors: list[dict[str, Any]] | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.request_id = request_id
        self.errors = list(errors or [])
        self.body = body or {}

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.errors:
            text += " (" + "; ".join(f"{e.get('field')}: {e.get('message')}"
                                     for e in self.errors) + ")"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text


class ConnectionError(SqueezerError, builtins.ConnectionError):
    """The server could not be reached (refused, DNS, TLS, or the connection broke)."""

    default_code = "server_unreachable"


class InputError(SqueezerError, builtins.FileNotFoundError):
    """A local input path that does not exist or is not a file; raised before any request."""

    default_code = "file_not_found"


class WaitTimeout(SqueezerError, builtins.TimeoutError):
    """:meth:`Client.wait` ran out of time; ``job`` is the job as last seen (still running)."""

    default_code = "wait_timeout"

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


class IntegrityError(SqueezerError):
    """A download's size or SHA-256 does not match what the server said the result is."""

    default_code = "checksum_mismatch"


class APIError(SqueezerError):
    """The server answered with an error body (``{success: false, status, id, code, message}``)."""


class AuthenticationError(APIError):
    """401: the key is missing, malformed, unknown or revoked (the server does not say which)."""


class PermissionDenied(APIError):
    """403: e.g. a download link whose signature does not match."""


class NotFound(APIError):
    """404: no such job or file for this key."""


class Conflict(APIError):
    """409: the job has already ended, or an Idempotency-Key was reused for another request."""


class Gone(APIError):
    """410: the job, file or download link has expired (``SQUEEZER_FILE_TTL_SECONDS``)."""


class PayloadTooLarge(APIError):
    """413: the upload is over the server's ``SQUEEZER_MAX_UPLOAD_BYTES``."""


class UnsupportedType(APIError):
    """415: the file is not a type the server compresses (code ``unsupported_format``)."""


class ValidationError(APIError):
    """422: the request (usually an option) is not valid; ``errors`` is ``[{field, message}]``."""


class RateLimitError(APIError):
    """429: over the key's rate limit; ``retry_after`` is the seconds the server asked for."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: a bug (500, with the request id to look up) or an outage."""


class ServiceUnavailable(ServerError):
    """503: the database or the blob store is down; ``retry_after`` as the server asked."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class JobFailed(SqueezerError):
    """The job ended ``failed``; ``code`` is the engine's (``password_required``, ``not_a_pdf``…)."""

    def __init__(self, job: Job) -> None:
        error = job.error or JobError(code=job.state, message=job.state)
        super().__init__(error.message, code=error.code)
        self.job = job


class JobCancelled(JobFailed):
    """The job ended ``cancelled`` (by :meth:`Client.cancel` or another client of the key)."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError, 403: PermissionDenied, 404: NotFound, 409: Conflict, 410: Gone,
    413: PayloadTooLarge, 415: UnsupportedType, 422: ValidationError, 429: RateLimitError,
    503: ServiceUnavailable,
}


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for an error answer, from the uniform body when there is one.

    Proxies in front of the API answer with their own bodies (HTML 502s); those
    still become an :class:`APIError` with code ``http_<status>``.
    """
    status = response.status_code
    body: Any = None
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        body = response.json()
    if isinstance(body, dict) and body.get("success") is False:
        code = str(body.get("code") or f"http_{status}")
        message = str(body.get("message") or response.reason_phrase)
        errors = body.get("errors") if isinstance(body.get("errors"), list) else None
        request_id = body.get("id") or response.headers.get("x-request-id")
    else:
        body = {}
        code = f"http_{status}"
        text = " ".join(response.text.split())[:200] if response.content else ""
        message = f"HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
        errors, request_id = None, response.headers.get("x-request-id")
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    kwargs: dict[str, Any] = {"code": code, "status": status, "request_id": request_id,
                              "errors": errors, "body": body}
    if cls in (RateLimitError, ServiceUnavailable):
        kwargs["retry_after"] = _retry_after(response)
    return cls(message, **kwargs)


# --- what the API returns -----------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))  # Python 3.11 reads a trailing Z
    except ValueError:
        return None


@dataclass(frozen=True)
class FileInfo:
    """A stored file (an upload or a result); kept until ``expires_at``."""

    id: str
    name: str
    size: int
    mime: str | None = None
    sha256: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileInfo:
        """From ``/v1/files`` (``id``) or a job's input/output brief (``file_id``)."""
        return cls(id=str(data.get("id") or data.get("file_id")), name=str(data.get("name") or ""),
                   size=int(data.get("size") or 0), mime=data.get("mime"),
                   sha256=data.get("sha256"), created_at=_time(data.get("created_at")),
                   expires_at=_time(data.get("expires_at")))


@dataclass(frozen=True)
class JobError:
    """Why a job did not succeed: the engine's code (as ``squeezer compress`` prints) and text."""

    code: str
    message: str


@dataclass(frozen=True)
class JobResult:
    """A succeeded job's output; ``download_url`` is signed and works without the key."""

    output: FileInfo
    input: FileInfo | None
    ratio: float | None
    saved_bytes: int | None
    original_kept: bool
    download_url: str
    expires_at: datetime | None
    report: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobResult:
        return cls(output=FileInfo.from_json(data["output"]),
                   input=FileInfo.from_json(data["input"]) if data.get("input") else None,
                   ratio=data.get("ratio"), saved_bytes=data.get("saved_bytes"),
                   original_kept=bool(data.get("original_kept")),
                   download_url=str(data["download_url"]),
                   expires_at=_time(data.get("expires_at")), report=dict(data.get("report") or {}))


@dataclass(frozen=True)
class Job:
    """A compression job as the server last described it (``GET /v1/jobs/{id}``).

    ``result`` is set once it succeeded, ``error`` once it failed or was cancelled;
    ``progress`` runs from 0 to 1 while it runs. ``raw`` is the whole JSON body.
    """

    id: str
    state: str
    progress: float
    result: JobResult | None = None
    error: JobError | None = None
    operation: str = "compress"
    input: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        error = data.get("error")
        return cls(
            id=str(data["id"]), state=str(data["state"]),
            progress=float(data.get("progress") or 0.0),
            result=JobResult.from_json(data["result"]) if data.get("result") else None,
            error=JobError(str(error.get("code")), str(error.get("message"))) if error else None,
            operation=str(data.get("operation") or "compress"),
            input=dict(data.get("input") or {}), options=dict(data.get("options") or {}),
            attempts=int(data.get("attempts") or 0), created_at=_time(data.get("created_at")),
            started_at=_time(data.get("started_at")), finished_at=_time(data.get("finished_at")),
            expires_at=_time(data.get("expires_at")), raw=data,
        )


@dataclass(frozen=True)
class Result:
    """What :meth:`Client.compress` did: sizes, the engine's report, and where the file is."""

    path: Path
    input_bytes: int
    output_bytes: int
    ratio: float | None
    saved_bytes: int
    original_kept: bool
    report: dict[str, Any]
    job: Job = field(repr=False)


# --- the client ---------------------------------------------------------------------------


JobRef = Job | str | uuid.UUID
Source = str | os.PathLike[str] | FileInfo | uuid.UUID


def _options_json(options: Options | Mapping[str, Any] | None,
                  more: Mapping[str, Any]) -> dict[str, Any]:
    """The request's ``options``: a model's non-default values (nested), a mapping as given,
    keywords on top."""
    if options is None:
        given: dict[str, Any] = {}
    elif hasattr(options, "dump"):  # an Options: what differs from the defaults, nested
        given = options.dump()
    else:
        given = dict(options)
    return {**given, **more}


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value[:8].lower().startswith(("http://", "https://"))


def _as_uuid(value: Any) -> str | None:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return str(uuid.UUID(value))
    return None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_input_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path` if it is a readable regular file, else :class:`InputError`.

    Checked before any request, so a typo costs no upload and names the path.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not a PDF file", code="invalid_input")
    if not p.is_file():
        raise InputError(f"{p} is not a regular file", code="invalid_input")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p} is not readable", code="permission_denied")
    return p


def default_output(src: Path) -> Path:
    """``X.pdf`` → ``X.compressed.pdf`` next to the input (as ``squeezer compress`` does)."""
    if src.suffix.lower() == ".pdf":
        return src.with_name(f"{src.stem}.compressed{src.suffix}")
    return src.with_name(f"{src.name}.compressed.pdf")


class _CountingReader:
    """A file wrapper that reports how much httpx has read, for the upload's progress.

    It keeps ``fileno`` so that httpx still learns the size (and sends a
    ``Content-Length``, not chunked encoding); a retry seeks to 0 and starts over.
    """

    def __init__(self, raw: IO[bytes], total: int | None,
                 on_progress: ProgressCallback | None) -> None:
        self.raw, self.total, self.on_progress, self.done = raw, total, on_progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.done += len(chunk)
        if self.on_progress is not None and self.total:
            self.on_progress("uploading", min(1.0, self.done / self.total))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self.raw.seek(offset, whence)
        if whence == 0:
            self.done = offset
        return position

    def tell(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()


class Client:
    """A connection to one Squeezer server with one API key.

    ``timeout`` bounds each network operation (connect, each read and write),
    not a whole request: a 1 GB upload may take minutes, and a long poll adds
    its own wait on top.  ``retries`` bounds how often one call is retried
    after a 429/503 or a connection that could not be made.  Thread-safe: one
    client may serve many threads.
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 0.25,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not base_url or not base_url.lower().startswith(("http://", "https://")):
            raise SqueezerError(f"the server URL must start with http:// or https://, "
                                f"not {base_url!r}", code="invalid_server_url")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or os.environ.get("SQUEEZER_API_KEY") or None
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self._origin = self._origin_of(self.base_url)
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            headers={"User-Agent": f"squeezer-client/{__version__}"},
            transport=transport, follow_redirects=False, trust_env=False,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (the context manager does this)."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the plumbing --------------------------------------------------------------------------

    @staticmethod
    def _origin_of(url: str) -> tuple[str, str, int | None]:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        return parts.scheme.lower(), (parts.hostname or "").lower(), port

    def _auth(self, url: str) -> dict[str, str]:
        """The key goes only to our own server, never to another host a URL points at."""
        if self.api_key and self._origin_of(url) == self._origin:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    def _url(self, path: str) -> str:
        return path if _is_url(path) else f"{self.base_url}{path}"

    def _sleep_before_retry(self, attempt: int, hinted: float | None) -> None:
        delay = hinted if hinted is not None else self.backoff * (2 ** attempt)
        time.sleep(delay + random.uniform(0, min(0.25, delay / 4 + 0.01)))

    def _request(self, method: str, path: str, *, retry_unsent_only: bool = False,
                 read_timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        """One API call with bounded retries; an error answer becomes a :class:`SqueezerError`.

        Retried: 429 and 503 (after ``Retry-After``), connections that could not
        be made, and — unless ``retry_unsent_only`` — requests whose answer was
        lost on the way (those must be safe to repeat).
        """
        url = self._url(path)
        headers = {**self._auth(url), **kwargs.pop("headers", {})}
        if read_timeout is not None:
            kwargs["timeout"] = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0),
                                              read=read_timeout)
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, headers=headers, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt < self.retries:
                    self._sleep_before_retry(attempt, None)
                    attempt += 1
                    continue
                raise ConnectionError(f"cannot reach {self.base_url}: {_reason(exc)}") from None
            except httpx.TransportError as exc:
                if not retry_unsent_only and attempt < self.retries:
                    self._sleep_before_retry(attempt, None)
                    attempt += 1
                    continue
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
                raise ConnectionError(f"{method} {url} {kind}: {_reason(exc)}",
                                      code="server_timeout" if kind == "timed out"
                                      else "connection_failed") from None
            if response.status_code in (429, 503) and attempt < self.retries:
                hinted = _retry_after(response)
                if hinted is None or hinted <= MAX_RETRY_AFTER:
                    self._sleep_before_retry(attempt, hinted)
                    attempt += 1
                    continue
            if response.is_error:
                raise error_from_response(response)
            return response

    def _job(self, job: JobRef) -> str:
        job_id = job.id if isinstance(job, Job) else _as_uuid(job)
        if not job_id:
            raise SqueezerError(f"not a job id: {job!r}", code="invalid_job_id")
        return job_id

    def me(self) -> dict[str, Any]:
        """``GET /v1/me``: the key's id, name, rate limit and the server's upload limits.

        Cheap and authenticated, so it is also the way to check a server and a
        key before starting work (``squeezer compress --server`` does).
        """
        return self._request("GET", "/v1/me").json()

    # -- files ---------------------------------------------------------------------------------

    def upload(self, path: str | os.PathLike[str], *, name: str | None = None,
               on_progress: ProgressCallback | None = None) -> FileInfo:
        """Store a local file on the server (streamed, never read whole); its :class:`FileInfo`.

        The server sniffs the bytes: a file that is not a PDF is refused with
        :class:`UnsupportedType` (code ``unsupported_format``) whatever its name says.
        """
        p = check_input_path(path)
        size = p.stat().st_size
        with p.open("rb") as raw:
            reader = _CountingReader(raw, size, on_progress)
            files = {"file": (name or p.name, reader, "application/pdf")}
            response = self._request("POST", "/v1/files", files=files)
        return FileInfo.from_json(response.json())

    def delete_file(self, file: FileInfo | str | uuid.UUID) -> None:
        """Delete a stored upload or result now instead of at its expiry."""
        file_id = file.id if isinstance(file, FileInfo) else _as_uuid(file)
        self._request("DELETE", f"/v1/files/{file_id}")

    # -- jobs ----------------------------------------------------------------------------------

    def submit(self, source: Source, *, webhook_url: str | None = None,
               idempotency_key: str | None = None, wait: float = 0,
               on_progress: ProgressCallback | None = None,
               options: Options | Mapping[str, Any] | None = None, **more: Any) -> Job:
        """Create a compression job; the job as it is (``wait`` > 0: held until it ends).

        ``source`` is a local path (uploaded first), an ``http(s)://`` URL (the
        server fetches it), or the id / :class:`FileInfo` of an upload.
        ``options``: a :class:`squeezer.engines.options.Options` (typed, checked
        here) or the same as a mapping, and/or as keywords (``level="high"``,
        ``pdf={"dpi": 150}``, ``remove_metadata=True`` …; docs/options.md); the
        server validates them (:class:`ValidationError`).  Without
        ``idempotency_key`` a fresh one is made, so that this call's own retries
        can never create two jobs.
        """
        if isinstance(source, FileInfo):
            job_input: dict[str, str] = {"file_id": source.id}
        elif isinstance(source, uuid.UUID):  # an id, even where a file has that name
            job_input = {"file_id": str(source)}
        elif _is_url(source):
            job_input = {"url": str(source)}
        elif _as_uuid(source) and not Path(str(source)).exists():
            job_input = {"file_id": str(_as_uuid(source))}
        else:
            job_input = {"file_id": self.upload(source, on_progress=on_progress).id}
        body: dict[str, Any] = {"input": job_input, "options": _options_json(options, more)}
        if webhook_url:
            body["webhook"] = {"url": webhook_url}
        if wait:
            body["wait"] = float(wait)
        headers = {"Idempotency-Key": idempotency_key or f"sqzc-{uuid.uuid4().hex}"}
        response = self._request("POST", "/v1/jobs", json=body, headers=headers,
                                 read_timeout=self.timeout + float(wait or 0))
        return Job.from_json(response.json())

    def get_job(self, job: JobRef, *, wait: float = 0) -> Job:
        """The job now; with ``wait`` > 0, held by the server until it ends or ``wait`` passes."""
        params = {"wait": f"{wait:g}"} if wait else None
        response = self._request("GET", f"/v1/jobs/{self._job(job)}", params=params,
                                 read_timeout=self.timeout + float(wait))
        return Job.from_json(response.json())

    def wait(self, job: JobRef, timeout: float | None = None, *,
             on_progress: ProgressCallback | None = None, poll: float | None = None,
             raise_on_failure: bool = True) -> Job:
        """Long-poll until the job ends; the ended job.

        Each round is one ``GET /v1/jobs/{id}?wait=N``, so a waiting client costs
        the server one request per minute, and learns of the end at once.  With
        ``on_progress`` the rounds are ``poll`` seconds (default 1) so that
        progress can be shown.  A failed or cancelled job raises
        :class:`JobFailed` / :class:`JobCancelled` (the job is on the exception)
        unless ``raise_on_failure`` is false; running out of ``timeout`` raises
        :class:`WaitTimeout`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        current = job if isinstance(job, Job) else None
        round_seconds = poll if poll is not None else (1.0 if on_progress else LONG_POLL_SECONDS)
        while True:
            if current is not None:
                if on_progress is not None and not current.ended:
                    on_progress(current.state, current.progress if current.state == "running"
                                else 0.0)
                if current.ended:
                    break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0 and current is not None:
                raise WaitTimeout(f"job {current.id} still {current.state} after {timeout:g} s",
                                  current)
            step = round_seconds if left is None else max(0.0, min(round_seconds, left))
            current = self.get_job(job if current is None else current, wait=step)
        if raise_on_failure and current.state == "failed":
            raise JobFailed(current)
        if raise_on_failure and current.state == "cancelled":
            raise JobCancelled(current)
        return current

    def cancel(self, job: JobRef) -> Job:
        """Cancel a queued or running job (its worker stops within a second or so).

        A job that has already ended raises :class:`Conflict` (code ``job_ended``).
        """
        return Job.from_json(self._request("DELETE", f"/v1/jobs/{self._job(job)}").json())

    def jobs(self, state: str | None = None, *, page_size: int = 100) -> Iterator[Job]:
        """Every job of this key, newest first, fetched a page at a time as the loop goes."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": max(1, min(100, page_size))}
            if state:
                params["state"] = state
            if cursor:
                params["cursor"] = cursor
            page = self._request("GET", "/v1/jobs", params=params).json()
            for item in page.get("data") or []:
                yield Job.from_json(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # -- results -------------------------------------------------------------------------------

    def download(self, job: JobRef, dest: str | os.PathLike[str], *,
                 on_progress: ProgressCallback | None = None) -> Path:
        """Fetch a succeeded job's output to ``dest`` (a file, or a directory to put it in).

        Streamed to a temporary file beside ``dest`` and renamed into place only
        once its size and SHA-256 match the result's, so ``dest`` is never a
        partial file; a connection lost midway resumes with a ``Range`` request.
        ``dest`` gets the mode of the file it replaces, else 0666 minus the umask.
        """
        current = job if isinstance(job, Job) and job.result else self.get_job(job)
        if current.state != "succeeded" or current.result is None:
            if current.state in ("failed", "cancelled"):
                raise (JobCancelled if current.state == "cancelled" else JobFailed)(current)
            raise SqueezerError(f"job {current.id} is {current.state}; it has no result yet",
                                code="no_result")
        result = current.result
        target = Path(dest)
        if target.is_dir():
            target = target / (result.output.name or f"{current.id}.pdf")
        if not target.parent.is_dir():
            raise InputError(f"the output directory {target.parent} does not exist",
                             code="invalid_output")
        try:
            mode = target.stat().st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "w+b") as out:
                os.fchmod(out.fileno(), mode)
                digest = self._fetch_into(result.download_url, out, result.output.size,
                                          on_progress)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            if size != result.output.size:
                raise IntegrityError(f"downloaded {size} bytes, the result has "
                                     f"{result.output.size}", code="size_mismatch")
            if result.output.sha256 and digest != result.output.sha256:
                raise IntegrityError("the downloaded file's SHA-256 does not match the result's")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if on_progress is not None:
            on_progress("done", 1.0)
        return target

    def _fetch_into(self, url: str, out: IO[bytes], expected: int,
                    on_progress: ProgressCallback | None) -> str:
        """Stream ``url`` into ``out``; resume after a broken connection; the SHA-256 hex."""
        digest = hashlib.sha256()
        written = 0
        attempt = 0
        while True:
            headers = self._auth(url)
            if written:
                headers["Range"] = f"bytes={written}-"
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code in (429, 503) and attempt < self.retries:
                        response.read()
                        self._sleep_before_retry(attempt, _retry_after(response))
                        attempt += 1
                        continue
                    if response.is_error:
                        response.read()
                        raise error_from_response(response)
                    if written and response.status_code != 206:  # range ignored: start over
                        out.seek(0)
                        out.truncate()
                        digest, written = hashlib.sha256(), 0
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if on_progress is not None and expected:
                            on_progress("downloading", min(1.0, written / expected))
                return digest.hexdigest()
            except httpx.TransportError as exc:
                if attempt < self.retries:
                    self._sleep_before_retry(attempt, None)
                    attempt += 1
                    continue
                raise ConnectionError(f"download from {url.split('?')[0]} failed: "
                                      f"{_reason(exc)}", code="connection_failed") from None

    def compress(self, source: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None,
                 *, timeout: float | None = None, on_progress: ProgressCallback | None = None,
                 options: Options | Mapping[str, Any] | None = None, **more: Any) -> Result:
        """Compress one file end to end: upload, submit, wait, download; the :class:`Result`.

        ``source`` is a local path or an ``http(s)://`` URL.  ``dest`` defaults to
        ``X.compressed.pdf`` beside a local ``X.pdf`` (the result's own name in
        the current directory for a URL); a directory means "in there".  A job
        that fails raises :class:`JobFailed` with the engine's code, exactly the
        codes the local ``squeezer compress`` reports.
        """
        if _is_url(source):
            target = Path(dest) if dest is not None else Path.cwd()
        else:
            src = check_input_path(source)
            target = Path(dest) if dest is not None else default_output(src)
        if not (target if target.is_dir() else target.parent).is_dir():
            raise InputError(f"the output directory {target.parent} does not exist",
                             code="invalid_output")
        # without a progress display, let the server hold the answer until the job ends
        hold = 0.0 if on_progress else min(LONG_POLL_SECONDS, timeout or LONG_POLL_SECONDS)
        started = time.monotonic()
        job = self.submit(str(source) if _is_url(source) else Path(source), wait=hold,
                          on_progress=on_progress, options=options, **more)
        left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        job = self.wait(job, left, on_progress=on_progress)
        path = self.download(job, target, on_progress=on_progress)
        assert job.result is not None
        result = job.result
        report = result.report
        input_bytes = int(report.get("input_bytes") or (result.input.size if result.input else 0))
        return Result(path=path, input_bytes=input_bytes, output_bytes=result.output.size,
                      ratio=result.ratio, saved_bytes=input_bytes - result.output.size,
                      original_kept=result.original_kept, report=report, job=job)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
