"""PDF.co's optimize and background-job calls (seeds 002, 003), on native jobs.

* ``POST /v1/pdf/optimize`` (form-encoded or JSON) fetches ``url`` through
  :func:`create_job` (so the SSRF policy applies) and either waits for the job
  (sync; a job still running after ``SQUEEZER_SYNC_WAIT_SECONDS`` is cancelled and
  answered 405, PDF.co's "use async" timeout) or answers at once (``async``).
* ``GET|POST /v1/job/check`` maps job states onto working / success / failed /
  aborted / unknown.
* ``GET /pdfco/output/{job}?expires=&signature=`` is the *stable* output
  link of an async job: signed (no key needed), valid for ``expiration``
  minutes from the job's creation, 404 until the result exists, then the
  result itself.  The sync answer's ``url`` is the result's native signed
  ``/v1/downloads`` link with the same lifetime.

The job id is ``<32 hex>--<expiration minutes>`` so that job/check can hand out
the same link as the optimize answer without a table.  Errors are PDF.co's
``{"error": true, "status": <code>, "message": ...}`` with HTTP 400 / 401 / 403 /
405 / 429 / 5xx.  See docs/compat.md.
"""

from squeezer.api.compat.pdfco.routes import router

__all__ = ["router"]
