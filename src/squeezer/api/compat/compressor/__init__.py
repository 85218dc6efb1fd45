"""Compressor.app's API (``/1.0``, seed 001): upload, fetch, long polling, connectors.

A client written for ``https://api.compressor.app/1.0`` works against
``https://squeezer.example/1.0`` with a Squeezer key as the Basic user name.
Everything runs on the native jobs (:mod:`squeezer.api.jobflow`): a request
becomes one native job, its options native engine options, its ``webhook`` the
native webhook in Compressor.app's format (``webhook_format='compressor'``),
its ``store`` the job's export target.  The result JSON is made in the jobs
layer (:mod:`squeezer.jobs.formats.compressor`), so the webhook POSTs exactly
what ``GET /1.0/jobs/{id}`` answers; the copy in the client's bucket is
written by the worker as part of the job (:mod:`squeezer.jobs.exports`).
Here: parsing requests, the vendor error bodies, and the connector routes
(:mod:`squeezer.api.compat._connectors`).  docs/compat.md lists every option
and every difference.
"""

from squeezer.api.compat.compressor.routes import router

__all__ = ["router"]
