"""Errors of the jobs layer that are about the worker, not about the file."""

from __future__ import annotations


class WorkerShutdown(Exception):
    """A task stopped because its worker is shutting down; the queue runs it again at once."""
