"""Light commands (pure): the PROTOCOL §6 envelope, ids, and how a delivery's state may move.

A delivery goes `pending` → `sent` → `received` → one of `done`, `failed`, `rejected`,
`expired`; a lamp not connected when the command is issued is `offline` and is sent when
it comes back before the command expires (else it stays `offline`). Final states never move.
"""

from __future__ import annotations

import os
from typing import Any, Final

COMMAND_PREFIX: Final = "lt-"  # every light command id starts with it (acks are routed by it)
COMMAND_TTL_S: Final = 300.0  # a lamp ignores (acks `expired`) a command older than this
ACK_GRACE_S: Final = 30.0  # sent, no final ack this long after expiry → `expired`
STATES: Final = ("pending", "sent", "received", "done", "failed", "rejected", "expired", "offline")
FINAL: Final = frozenset({"done", "failed", "rejected", "expired"})
_RANK: Final = {"pending": 0, "offline": 1, "sent": 2, "received": 3,
                "done": 4, "failed": 4, "rejected": 4, "expired": 4}
ACK_TO_STATE: Final = {"received": "received", "done": "done", "failed": "failed",
                       "rejected": "rejected", "expired": "expired"}


def new_command_id() -> str:
    return COMMAND_PREFIX + os.urandom(12).hex()  # 27 characters


def new_batch_id() -> str:
    return "lb-" + os.urandom(8).hex()


def may_move(old: str, new: str) -> bool:
    """Forward only; final states stay; `offline` may still go to `sent`."""
    if old in FINAL or old == new:
        return False
    return _RANK[new] > _RANK[old]


def envelope(command_id: str, action: str, now: float, *, level: int | None = None,
             schedule: dict[str, Any] | None = None, next_on: float | None = None,
             next_off: float | None = None, tz: str | None = None, ttl_s: float = COMMAND_TTL_S) -> dict[str, Any]:
    """The command body for `…/cmd`."""
    body: dict[str, Any] = {"id": command_id, "action": action, "ts": round(now, 3),
                            "expires_at": round(now + ttl_s, 3)}
    if level is not None:
        body["level"] = level
    if schedule is not None:
        body["schedule"] = schedule
        if next_on is not None and next_off is not None:
            body["next_on"] = round(next_on, 3)
            body["next_off"] = round(next_off, 3)
        if tz is not None:
            body["tz"] = tz
    return body
