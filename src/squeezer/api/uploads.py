"""Multipart uploads streamed straight into the blob store.

Starlette's form parser spools a whole file before the route sees it; a 1 GB
upload would then sit on the API's disk (or memory) before being copied to
storage.  Here the body is parsed as it arrives: form fields before the file
are collected (small, bounded), the file part's bytes are handed to
:meth:`BlobStore.put_stream` chunk by chunk (which counts, hashes and
enforces the size limit), and fields after the file are collected once the
body ends.  The first bytes are sniffed: only the types an engine accepts
are stored (415 otherwise), whatever the file's name or declared type says.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from squeezer.api.bodylimit import allow_body
from squeezer.api.errors import ApiError
from squeezer.engines.errors import UnsupportedFormatError
from squeezer.engines.sniff import EXTENSIONS, MIME, sniff
from squeezer.net import sanitize_filename
from squeezer.storage import BlobStore, StoredBlob

MAX_FIELDS = 64
MAX_FIELD_BYTES = 64 << 10
SNIFF_BYTES = 4096  # a PNG's chunks or an SVG's prolog before the root
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^;]+)", re.IGNORECASE)


def sniff_mime(head: bytes) -> str | None:
    """The media type of a file from its first bytes; None for what no engine takes.

    The engines' own sniffer decides (``squeezer.engines.sniff``): PDFs (``%PDF-``
    anywhere in the first 1024 bytes, as readers accept) and the image formats; EPS,
    PostScript and unknown bytes are refused, whatever the name or declared type says.
    """
    try:
        kind = sniff(head)
    except UnsupportedFormatError:
        return None
    return MIME[kind.format]


class UnsupportedType(Exception):
    """Raised inside the upload stream so that the store aborts the partial blob."""


@dataclass
class Upload:
    stored: StoredBlob
    name: str
    mime: str
    fields: dict[str, str] = field(default_factory=dict)


def _disposition_name(raw_headers: dict[bytes, bytes]) -> tuple[str | None, str | None]:
    value = raw_headers.get(b"content-disposition", b"")
    _, params = parse_options_header(value)
    name = params.get(b"name")
    filename = params.get(b"filename")
    star = _FILENAME_STAR.search(value.decode("latin-1"))
    text_name = None
    if star:
        charset, _, rest = star.group(1).strip().strip('"').partition("'")
        _, _, quoted = rest.partition("'")
        text_name = urllib.parse.unquote(quoted, encoding=charset or "utf-8", errors="replace")
    elif filename is not None:
        text_name = filename.decode("utf-8", errors="replace")
    return (name.decode("utf-8", errors="replace") if name is not None else None), text_name


def boundary_of(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise ApiError(415, "send the file as multipart/form-data (field 'file')",
                       code="unsupported_media_type")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data without a boundary")
    return boundary


def check_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length")
    if max_bytes and declared and declared.isdigit() and int(declared) > max_bytes + (1 << 20):
        raise ApiError(413, f"the upload is larger than the limit of {max_bytes} bytes",
                       code="too_large")


# --- the parser: every file part streamed in order (PDF24 uploads several at once) ----------


@dataclass
class _FilePart:
    field_name: str | None
    filename: str | None
    pending: deque[bytes] = field(default_factory=deque)
    done: bool = False


class _PartsParser:
    """python-multipart callbacks: every file part (any field name) into its own queue."""

    def __init__(self, boundary: bytes, max_files: int, file_field: str | None = None) -> None:
        self.max_files = max_files
        self.file_field = file_field
        self.fields: dict[str, str] = {}
        self.started: deque[_FilePart] = deque()
        self.count = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._file: _FilePart | None = None
        self._field: str | None = None
        self._field_buf = bytearray()
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_cb,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        })

    def _part_begin(self) -> None:
        self._headers, self._file, self._field = {}, None, None
        self._field_buf = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        name, filename = _disposition_name(self._headers)
        wanted = self.file_field
        if filename is not None or (wanted is not None and name == wanted):
            if wanted is not None and name != wanted:
                raise ApiError(422, f"send the file in the field {wanted!r}",
                               errors=[{"field": name or "file", "message": "unexpected file"}])
            self.count += 1
            if self.count > self.max_files:
                what = "one file" if self.max_files == 1 else f"{self.max_files} files"
                raise ApiError(422, f"more than {what} in one request",
                               errors=[{"field": name or "file", "message": "too many files"}])
            self._file = _FilePart(name, filename)
            self.started.append(self._file)
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise ApiError(422, f"more than {MAX_FIELDS} form fields")
            self._field = name or ""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.pending.append(bytes(data[start:end]))
        elif self._field is not None:
            self._field_buf += data[start:end]
            if len(self._field_buf) > MAX_FIELD_BYTES:
                raise ApiError(422, f"form field {self._field!r} is larger than "
                               f"{MAX_FIELD_BYTES >> 10} KiB")

    def _part_end(self) -> None:
        if self._file is not None:
            self._file.done = True
        elif self._field is not None:
            self.fields[self._field] = self._field_buf.decode("utf-8", errors="replace")
        self._file, self._field = None, None

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            raise ApiError(400, f"malformed multipart body: {exc}") from None


async def receive_upload(request: Request, store: BlobStore, key: str, *, max_bytes: int,
                         file_field: str = "file") -> Upload:
    """Stream the one file of a multipart body (in ``file_field``) to ``key``."""
    uploads = await receive_uploads(request, store, lambda _: key, max_bytes=max_bytes,
                                    max_files=1, file_field=file_field)
    return uploads[0]


async def receive_uploads(request: Request, store: BlobStore, key_for: Callable[[int], str], *,
                          max_bytes: int, max_files: int = 20,
                          file_field: str | None = None) -> list[Upload]:
    """Stream every file part of one multipart body into its own blob, in order.

    ``key_for(i)`` names the blob of the i-th file; with ``file_field``, files must come
    in that field (a part of that name counts as a file even without a file name).
    Each file is sniffed and size-limited like :func:`receive_upload`'s; on any error the blobs already
    stored for this request are deleted, so a request stores all of its files or
    none.  The form fields (whatever their position) are in every Upload's ``fields``.
    """
    if max_bytes and max_files:
        check_declared_length(request, max_bytes * max_files)
    # the body is streamed into the store under the per-file limit, not read whole
    allow_body(request, max_bytes * max_files + (1 << 20) if max_bytes else 0)
    parser = _PartsParser(boundary_of(request), max_files, file_field)
    body = request.stream().__aiter__()
    ended = False

    async def pull() -> bool:
        nonlocal ended
        try:
            chunk = await body.__anext__()
        except StopAsyncIteration:
            ended = True
            return False
        parser.write(chunk)
        return True

    async def part_bytes(part: _FilePart, sniffed: dict[str, str | None]) -> AsyncIterator[bytes]:
        head = bytearray()
        while True:
            while part.pending:
                chunk = part.pending.popleft()
                if "mime" not in sniffed:
                    head += chunk
                    if len(head) < SNIFF_BYTES and not part.done and not ended:
                        continue
                    sniffed["mime"] = sniff_mime(bytes(head))
                    if sniffed["mime"] is None:
                        raise UnsupportedType()
                    chunk, head = bytes(head), bytearray()
                yield chunk
            if part.done or ended:
                break
            await pull()
        if "mime" not in sniffed:
            sniffed["mime"] = sniff_mime(bytes(head))
            if sniffed["mime"] is None:
                raise UnsupportedType()
            if head:
                yield bytes(head)

    stored: list[tuple[StoredBlob, _FilePart, str]] = []
    try:
        while True:
            while not parser.started and not ended:
                await pull()
            if not parser.started:
                break
            part = parser.started.popleft()
            blob_key = key_for(len(stored))
            sniffed: dict[str, str | None] = {}
            try:
                blob = await store.put_stream(blob_key, part_bytes(part, sniffed),
                                              max_bytes=max_bytes or None, content_type=None)
            except ClientDisconnect:
                raise ApiError(400, "the client went away during the upload") from None
            except UnsupportedType:
                shown = sanitize_filename(part.filename) or f"file {len(stored) + 1}"
                raise ApiError(415, f"unsupported file type ({shown}): send a PDF or an image "
                               "(JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP, SVG)",
                               code="unsupported_format") from None
            stored.append((blob, part, sniffed["mime"] or "application/octet-stream"))
            if not part.done and ended:
                raise ApiError(400, "the upload ended before the file did")
    except BaseException:
        for blob, _, _ in stored:
            await store.delete(blob.key)
        raise
    if not stored:
        field_name = file_field or "file"
        raise ApiError(422, f"no file in the request (send it in the field {field_name!r})",
                       errors=[{"field": field_name, "message": "required"}])
    return [Upload(stored=blob, name=sanitize_filename(part.filename) or _default_name(mime),
                   mime=mime, fields=parser.fields) for blob, part, mime in stored]


def _default_name(mime: str) -> str:
    ext = next((EXTENSIONS[f] for f, m in MIME.items() if m == mime), "bin")
    return f"upload.{ext}"
