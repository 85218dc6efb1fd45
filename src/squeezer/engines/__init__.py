"""Pure compression engines: file in, file out, options, report.

Nothing in this package may import the service layers (api, db, jobs, storage):
the CLI's ``compress`` and the job workers both call these functions directly.
"""
