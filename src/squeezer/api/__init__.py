"""The HTTP service: native API v1 and the vendor protocols under ``compat/``.

Routes translate HTTP to the database, the blob store and the queue; they
never run an engine.  See docs/api.md.
"""

from squeezer.api.app import create_app

__all__ = ["create_app"]
