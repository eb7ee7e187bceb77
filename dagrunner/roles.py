"""The three roles of the api-server, ordered: each can do what the one before it can, and more.

viewer: reads everything (logs and audit included, secrets masked). operator: also changes runs and tasks
(trigger, clear, mark, pause), answers approvals, replays dead letters, sets pools. admin: also manages users.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """Whether someone with this role may do what `needed` is required for."""
        return self.rank >= needed.rank


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
