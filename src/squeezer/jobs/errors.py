"""Errors of the jobs layer: the failures a job records that are not about the file's content,
and the worker's own signals.

The codes and statuses of every failure a job can record come from the error
classes (:func:`squeezer.errors.status_of`); these are the jobs layer's own.
"""

from __future__ import annotations

from squeezer.errors import SqueezerError


class WorkerShutdown(Exception):
    """A task stopped because its worker is shutting down; the queue runs it again at once."""


class InputGone(SqueezerError):
    """The job's stored input expired or was deleted before the job ran."""

    code = "input_gone"
    http_status = 410


class ExportFailed(SqueezerError):
    """The result could not be written to the job's export target; the job fails with it."""

    code = "export_failed"
    http_status = 502


class JobCancelled(SqueezerError):
    """The caller asked the engine to stop (``should_stop``); the child was killed.

    Deliberately not an :class:`~squeezer.engines.errors.EngineError`: it says
    nothing about the file.
    """

    code = "cancelled"
    http_status = 409
