"""The PDF24 backend protocol (seed 000): ``/pdf24/client.php?action=...``.

upload → compressPdf → getStatus (poll) → downloadJobResult, as PDF24's own web
client drives it, translated onto native files and jobs:

* an uploaded file is a native upload; its PDF24 name ``upload_<32 hex>.pdf``
  is the file id, so nothing extra is stored;
* a compressPdf job of N files is N native jobs with the same options; the
  PDF24 job id ``compressPdf_<32 hex × N>`` is their ids in order (reversible,
  no table; one file gives exactly PDF24's ``compressPdf_<32 hex>``), so each
  part is owned, expired and cancelled like any other job;
* the download is the one result, or a ZIP of all of them (stored, not
  deflated: PDFs are compressed already), streamed with an exact length.

PDF24 has no API key; Squeezer still wants one, in any form the native API
accepts.  Errors come out as ``{"error": "<message>", "code": "<code>"}`` with
the native HTTP status (PDF24 documents no error shape).  See docs/compat.md.
"""

from squeezer.api.compat.pdf24.routes import router

__all__ = ["router"]
