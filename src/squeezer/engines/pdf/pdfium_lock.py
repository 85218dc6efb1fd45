"""The one lock every call into PDFium from the engine holds.

PDFium is not thread-safe: no two calls into it may run at the same time,
even on different documents (pypdfium2's documentation says so).  ctypes
releases the GIL around each foreign call, so the GIL does not protect it.
The engine uses PDFium from several threads (1-bit decodes in the image step,
the input's reference renders next to the compression), so each use holds
:data:`LOCK` from opening a document until it and everything taken from it
are closed; pypdfium2 then has nothing left for a finalizer to free later,
on some other thread.
"""

from __future__ import annotations

import threading

#: Re-entrant: a helper that takes it may be called by code that holds it already.
LOCK = threading.RLock()
