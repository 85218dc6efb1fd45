"""Sending a stored file: ``Range`` requests, ``Content-Disposition``, straight from storage.

The API never holds a whole file: it streams the blob store's response, so a
1 GB result costs a chunk of memory, and a client resuming a download asks
for ``bytes=N-`` and gets ``206`` with the rest.
"""

from __future__ import annotations

import re
import urllib.parse

from fastapi import Request
from fastapi.responses import StreamingResponse

from squeezer.api.errors import ApiError
from squeezer.db.files import FileRow
from squeezer.storage import BlobStore, InvalidRange

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name in ``filename*``."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return (f'{disposition}; filename="{fallback or "file"}"; '
            f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of one byte range, None for the whole file; 416 when unsatisfiable.

    Several ranges in one request (``bytes=0-1,5-6``) are answered with the whole file,
    which RFC 9110 allows.
    """
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # not a range we understand: ignore it, as RFC 9110 allows
    first, last = match.groups()
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0:
            raise _unsatisfiable(size)
        return max(0, size - length), size
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if start >= size or end <= start:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(416, "the requested range is outside the file",
                    headers={"Content-Range": f"bytes */{size}"})


async def send_file(request: Request, store: BlobStore, row: FileRow,
                    disposition: str = "attachment") -> StreamingResponse:
    span = parse_range(request.headers.get("range"), row.size)
    try:
        if span is None:
            reader = await store.open_range(row.blob_key)
        else:
            reader = await store.open_range(row.blob_key, span[0], span[1])
    except InvalidRange:
        raise _unsatisfiable(row.size) from None
    headers = {
        "Content-Length": str(reader.length),
        "Content-Disposition": content_disposition(row.name, disposition),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if row.sha256:  # (empty for a direct upload until a worker has read it)
        headers["ETag"] = f'"{row.sha256}"'
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {reader.start}-{reader.end - 1}/{reader.size}"
    if request.method == "HEAD":
        await reader.aclose()
        return StreamingResponse(iter(()), status_code=status, headers=headers,
                                 media_type=row.mime)

    async def body():
        try:
            async for chunk in reader:
                yield chunk
        finally:
            await reader.aclose()

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=row.mime)
