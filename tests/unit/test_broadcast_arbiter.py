"""Arbitration decisions (pure): who plays, who waits, who is preempted."""

from __future__ import annotations

import pytest

from hub.broadcasts.arbiter import Item, decide, next_from_queue
from hub.broadcasts.model import may_move

pytestmark = pytest.mark.unit


def item(cid: str, priority: int, due: float = 0.0, expires: float = 100.0) -> Item:
    return Item(cid, "b-" + cid, priority, due, expires)


def test_idle_online_speaker_plays_at_once() -> None:
    assert decide(item("a", 3), online=True, current=None, now=1).kind == "play"


def test_offline_speaker_keeps_the_item_as_offline() -> None:
    assert decide(item("a", 9), online=False, current=None, now=1).kind == "offline"


def test_expired_item_is_not_played_even_on_an_idle_speaker() -> None:
    assert decide(item("a", 3, expires=10), online=True, current=None, now=10).kind == "expired"


def test_higher_priority_preempts_the_current_play() -> None:
    routine = item("r", 3)
    d = decide(item("e", 9), online=True, current=routine, now=1)
    assert (d.kind, d.stop) == ("preempt", routine)


@pytest.mark.parametrize("priority", [3, 2, 0])
def test_equal_or_lower_priority_waits_behind_the_current_play(priority: int) -> None:
    current = item("r", 3)
    d = decide(item("x", priority), online=True, current=current, now=1)
    assert (d.kind, d.behind) == ("queue", current)


def test_free_speaker_takes_the_highest_priority_then_the_earliest() -> None:
    q = [item("low", 1, due=1), item("hi-late", 5, due=9), item("hi-early", 5, due=2)]
    nxt, expired, rest = next_from_queue(q, now=10)
    assert nxt is not None and nxt.command_id == "hi-early"
    assert [i.command_id for i in rest] == ["hi-late", "low"]
    assert expired == []


def test_queue_drops_items_that_expired_while_waiting() -> None:
    nxt, expired, rest = next_from_queue([item("old", 9, expires=5), item("ok", 1)], now=6)
    assert nxt is not None and nxt.command_id == "ok"
    assert [i.command_id for i in expired] == ["old"] and rest == []


@pytest.mark.parametrize(
    ("old", "new", "from_device", "ok"),
    [
        ("pending", "sent", False, True),
        ("sent", "received", True, True),
        ("playing", "received", True, False),  # late duplicate ack does not go backwards
        ("done", "playing", True, False),  # terminal is final
        ("preempted", "done", True, False),
        ("expired", "done", True, True),  # the speaker's word beats the hub's guess
        ("expired", "done", False, False),
        ("offline", "sent", False, True),
    ],
)
def test_delivery_states_only_move_forward(old: str, new: str, from_device: bool, ok: bool) -> None:
    assert may_move(old, new, from_device=from_device) is ok
