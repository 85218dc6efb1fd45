"""PassportPDF's API (``/api``, seed 004): load a document, Reduce it in place, save, close.

A client written for ``https://passportpdfapi.com/api`` works against
``https://squeezer.example/api`` with a Squeezer key in ``X-PassportPDF-API-Key``.
PassportPDF keeps a loaded document on the server and changes it in place; here
a document is a row of ``compat_passportpdf_documents`` (migration 0005): its
``FileId`` is the Squeezer file id of the loaded upload, and ``current_file_id``
the file that is its content now.  Loading runs a lossless native job on the
upload (the engine, in its sandboxed child, checks that the PDF opens and counts
its pages; the API process never parses a PDF).  ``Reduce`` is one native job on
the current version, whose result becomes the current version; ``SaveDocument``
answers it in base64; ``DocumentClose`` deletes every version.

Every answer is HTTP 200 with ``Error`` null or ``{ResultCode, ExtResultStatus,
ExtResultMessage, InternalErrorId}`` in PassportPDF's status names; field names
are PascalCase on the wire and any casing is accepted on input.
"""

from squeezer.api.compat.passportpdf.routes import router

__all__ = ["router"]
