"""The problem state machine, table-driven: every (from, to) pair and every role."""

from __future__ import annotations

import itertools

import pytest

from hub.problems.machine import (
    TRANSITIONS,
    RoleForbidden,
    TransitionForbidden,
    allowed_targets,
    check_transition,
    may_create,
    may_delete,
)
from hub.problems.model import STATES

pytestmark = pytest.mark.unit

ALLOWED = {
    ("open", "assigned"), ("open", "rejected"),
    ("assigned", "fixed"), ("assigned", "rejected"),
    ("fixed", "verified"), ("fixed", "assigned"), ("fixed", "rejected"),
    ("verified", "closed"), ("verified", "assigned"), ("verified", "rejected"),
}


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states_is_allowed_exactly_when_the_contract_says(src: str, dst: str) -> None:
    if (src, dst) in ALLOWED:
        check_transition(src, dst, "operator")
        check_transition(src, dst, "admin")
    else:
        with pytest.raises(TransitionForbidden) as err:
            check_transition(src, dst, "operator")
        assert err.value.from_state == src and err.value.to_state == dst
        assert src in str(err.value) and dst in str(err.value)


def test_the_table_is_the_contract() -> None:
    assert {(s, d) for s, targets in TRANSITIONS.items() for d in targets} == ALLOWED
    assert set(TRANSITIONS) == set(STATES)
    assert allowed_targets("closed") == frozenset() and allowed_targets("rejected") == frozenset()


@pytest.mark.parametrize("role", ["viewer", "", "root"])
def test_a_viewer_or_unknown_role_may_not_move_a_problem(role: str) -> None:
    with pytest.raises(RoleForbidden):
        check_transition("open", "assigned", role)


def test_unknown_target_state_is_a_value_error_not_a_forbidden_transition() -> None:
    with pytest.raises(ValueError, match="unknown state"):
        check_transition("open", "done", "operator")


def test_final_states_say_they_are_final() -> None:
    with pytest.raises(TransitionForbidden, match="final"):
        check_transition("closed", "open", "admin")


@pytest.mark.parametrize(("role", "create", "delete"), [
    ("viewer", False, False), ("operator", True, False), ("admin", True, True),
])
def test_who_may_create_and_delete(role: str, create: bool, delete: bool) -> None:
    assert may_create(role) is create
    assert may_delete(role) is delete
