"""Pure compression engines: file in, file out, options, report.

Nothing in this package may import the service layers (api, db, jobs, storage):
the CLI's ``compress`` and the job workers both call these functions directly.
"""

__all__ = ["CompressOptions", "compress_any"]


def __getattr__(name: str):
    if name in __all__:
        from squeezer.engines import dispatch

        return getattr(dispatch, name)
    raise AttributeError(f"module 'squeezer.engines' has no attribute {name!r}")
