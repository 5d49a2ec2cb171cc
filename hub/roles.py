"""The API roles and their ranks (pure): viewer < operator < admin."""

from __future__ import annotations

from typing import Final, Literal

Role = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "operator", "admin")
_RANK: Final[dict[str, int]] = {r: i for i, r in enumerate(ROLES)}


def role_allows(have: str, need: str) -> bool:
    """Whether role `have` may do what needs role `need` (an unknown `have` may nothing)."""
    return _RANK.get(have, -1) >= _RANK[need]
