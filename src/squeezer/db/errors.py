"""Database failures the service maps to HTTP statuses (503 for an outage)."""

from __future__ import annotations


class DatabaseError(Exception):
    code = "database_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached; callers answer 503 and retry later."""

    code = "service_unavailable"


class MigrationError(DatabaseError):
    """The schema on the server is newer than this code, or a migration failed."""

    code = "migration_failed"
