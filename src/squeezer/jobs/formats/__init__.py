"""Vendor formats of a job's webhook body (``jobs.webhook_format``, migration 0006).

A job created through a vendor protocol is announced in that vendor's shape,
so its clients' webhook receivers work unchanged.  Each module here makes,
from database rows, exactly the body the protocol's API answers for the job
(the compat route calls the same function), so the two never disagree.
"""
