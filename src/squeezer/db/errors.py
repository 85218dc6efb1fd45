"""Database failures the service maps to HTTP statuses (503 for an outage)."""

from __future__ import annotations

from squeezer.errors import SqueezerError


class DatabaseError(SqueezerError):
    code = "database_error"
    http_status = 500


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached; callers answer 503 and retry later."""

    code = "database_unavailable"
    http_status = 503
    retryable = True


class MigrationError(DatabaseError):
    """The schema on the server is newer than this code, or a migration failed."""

    code = "migration_failed"
