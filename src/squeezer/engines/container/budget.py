"""The allowance one container run shares with every container nested in it.

A ZIP inside a ZIP inside a tar is one job: its members, their expanded bytes
and the nesting depth are counted together against
``Limits.max_archive_members``, ``Limits.max_archive_bytes`` and
``Limits.max_archive_depth``, and the wall clock against ``Limits.max_seconds``
(:class:`squeezer.engines.budget.Budget`).  Declared sizes are counted before
anything is inflated, so a bomb is refused from its directory alone.
"""

from __future__ import annotations

from squeezer.engines.budget import Budget
from squeezer.engines.errors import ArchiveBombError, NestingTooDeepError, TooManyMembersError
from squeezer.engines.limits import Limits


class ArchiveBudget:
    def __init__(self, limits: Limits, budget: Budget | None = None) -> None:
        self.limits = limits
        self.clock = budget or Budget(limits)
        self.members = 0
        self.bytes = 0
        self.depth = 0
        self.max_depth = 0  #: the deepest nesting reached

    def add_members(self, count: int) -> None:
        self.members += count
        if self.limits.max_archive_members and self.members > self.limits.max_archive_members:
            raise TooManyMembersError(
                f"the container holds {self.members} members (nested ones included); the "
                f"limit is {self.limits.max_archive_members}")

    def add_bytes(self, nbytes: int, name: str = "") -> None:
        self.bytes += nbytes
        if self.limits.max_archive_bytes and self.bytes > self.limits.max_archive_bytes:
            raise ArchiveBombError(
                f"the container expands to more than {self.limits.max_archive_bytes} bytes "
                f"(nested containers included){f', at {name}' if name else ''}")

    def enter(self) -> None:
        """One level deeper (a container inside a container)."""
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)
        if self.limits.max_archive_depth and self.depth > self.limits.max_archive_depth:
            raise NestingTooDeepError(
                f"containers are nested more than {self.limits.max_archive_depth} deep")

    def leave(self) -> None:
        self.depth -= 1

    def check_time(self) -> None:
        self.clock.check_time()
