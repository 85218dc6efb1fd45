"""How a damaged content stream fails in pikepdf, as one tuple of exceptions.

Why: qpdf's content-stream parser (``pikepdf.parse_content_stream``) fails on a
damaged stream in more ways than pikepdf documents: any ``PikepdfError``, ``TypeError``
(a stream object among a page's contents), ``UnicodeDecodeError``, ``ValueError``,
and ``IndexError`` (qpdf's ``std::out_of_range``: a mutated inline image in
``qpdf__inline-images.pdf``, seed 1017 of ``make fuzz``, ended the job as
``internal_error``).  Every caller decides what an unreadable stream means to it
(not a scan, a font left whole, tags not seen) and catches :data:`PARSE_ERRORS`.
"""

from __future__ import annotations

import pikepdf

#: what ``pikepdf.parse_content_stream`` raises on a damaged stream
PARSE_ERRORS: tuple[type[Exception], ...] = (pikepdf.PikepdfError, TypeError, ValueError,
                                             IndexError)
