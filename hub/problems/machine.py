"""The problem state machine (pure): which transitions exist and who may make them.

    open → assigned → fixed → verified → closed
    fixed → assigned, verified → assigned      (rework)
    open | assigned | fixed | verified → rejected

`closed` and `rejected` are final. Every transition needs the operator role; deleting a
problem needs the admin role (the API enforces roles; this module says which).
"""

from __future__ import annotations

from typing import Final

from hub.problems.model import STATES
from hub.roles import role_allows

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "open": frozenset({"assigned", "rejected"}),
    "assigned": frozenset({"fixed", "rejected"}),
    "fixed": frozenset({"verified", "assigned", "rejected"}),
    "verified": frozenset({"closed", "assigned", "rejected"}),
    "closed": frozenset(),
    "rejected": frozenset(),
}
TRANSITION_ROLE: Final = "operator"
CREATE_ROLE: Final = "operator"
DELETE_ROLE: Final = "admin"
READ_ROLE: Final = "viewer"


class TransitionForbidden(Exception):
    """The state machine has no such transition (the API answers 409)."""

    def __init__(self, from_state: str, to_state: str) -> None:
        allowed = sorted(TRANSITIONS.get(from_state, ()))
        super().__init__(
            f"a problem in state {from_state!r} cannot move to {to_state!r}"
            + (f"; allowed: {', '.join(allowed)}" if allowed else f"; {from_state!r} is final")
        )
        self.from_state, self.to_state = from_state, to_state


class RoleForbidden(Exception):
    """The caller's role may not do this (the API answers 403)."""


def allowed_targets(state: str) -> frozenset[str]:
    return TRANSITIONS.get(state, frozenset())


def check_transition(from_state: str, to_state: str, role: str = TRANSITION_ROLE) -> None:
    """Raise unless `role` may move a problem from `from_state` to `to_state`.

    ValueError for a state name that does not exist, RoleForbidden for too small a role,
    TransitionForbidden for a transition the machine does not have.
    """
    if to_state not in STATES:
        raise ValueError(f"unknown state {to_state!r}; one of {', '.join(STATES)}")
    if not role_allows(role, TRANSITION_ROLE):
        raise RoleForbidden(f"changing a problem's state needs the {TRANSITION_ROLE} role")
    if to_state not in allowed_targets(from_state):
        raise TransitionForbidden(from_state, to_state)


def may_delete(role: str) -> bool:
    return role_allows(role, DELETE_ROLE)


def may_create(role: str) -> bool:
    return role_allows(role, CREATE_ROLE)
