"""PostgreSQL: where the service keeps keys, files, jobs and rate-limit counters.

The database is the one thing every API and worker process shares, so the
service's guarantees (a job is never lost, rate limits hold across processes)
are written as transactions here.  Without ``SQUEEZER_DATABASE_URL`` an
embedded server is started in the data directory (:mod:`squeezer.db.server`).
"""

from squeezer.db.migrate import migrate
from squeezer.db.server import Database, open_database

__all__ = ["Database", "migrate", "open_database"]
