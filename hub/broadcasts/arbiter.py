"""Which play a speaker gets, and when: pure decisions over what the hub knows.

The hub is the arbiter (PROTOCOL §6): it never sends a play that the speaker would reject.
  - offline speaker            → the item waits as `offline` (served on reconnect);
  - expired item               → `expired`;
  - idle speaker               → play;
  - busy with a lower priority → preempt: `stop` the current one, then play;
  - busy with equal or higher  → wait in the speaker's queue until it is free or the item expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DecisionKind = Literal["play", "preempt", "queue", "offline", "expired"]


@dataclass(frozen=True, slots=True)
class Item:
    command_id: str
    broadcast_id: str
    priority: int
    due_at: float
    expires_at: float

    def sort_key(self) -> tuple[int, float, str]:
        """Queue order: highest priority first, then the earliest due, then a stable id."""
        return (-self.priority, self.due_at, self.command_id)


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    item: Item
    stop: Item | None = None  # for `preempt`: what is stopped first
    behind: Item | None = None  # for `queue`: what holds the speaker


def decide(item: Item, *, online: bool, current: Item | None, now: float) -> Decision:
    """What to do with `item`, due on a speaker now."""
    if now >= item.expires_at:
        return Decision("expired", item)
    if not online:
        return Decision("offline", item)
    if current is None:
        return Decision("play", item)
    if item.priority > current.priority:
        return Decision("preempt", item, stop=current)
    return Decision("queue", item, behind=current)


def next_from_queue(queue: list[Item], now: float) -> tuple[Item | None, list[Item], list[Item]]:
    """A free speaker takes the best unexpired item: (to_play, expired, still_waiting)."""
    expired = [i for i in queue if now >= i.expires_at]
    alive = sorted((i for i in queue if now < i.expires_at), key=Item.sort_key)
    if not alive:
        return None, expired, []
    return alive[0], expired, alive[1:]
