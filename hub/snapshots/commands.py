"""The PROTOCOL §6 `snapshot` command and the waits for its answer (a snapshot whose MQTT 5
user property `cmd_id` names the command)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    command_id: str
    device_id: str
    state: str  # sent | answered | rejected | timeout
    expires_at: float
    snapshot: dict[str, Any] | None = None  # device, ts, health, night, url — when answered


def snapshot_command(command_id: str, now: float, ttl_s: float) -> bytes:
    return json.dumps(
        {"id": command_id, "action": "snapshot", "ts": now, "expires_at": now + ttl_s}
    ).encode()


@dataclass
class Waiter:
    event: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None


class CommandWaiters:
    """Thread-safe: request threads wait, snapshot workers answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, Waiter] = {}

    def register(self, command_id: str) -> Waiter:
        waiter = Waiter()
        with self._lock:
            self._waiters[command_id] = waiter
        return waiter

    def discard(self, command_id: str) -> None:
        with self._lock:
            self._waiters.pop(command_id, None)

    def answer(self, command_ids: Iterable[str], result: dict[str, Any]) -> None:
        """The first answer wins; ids nobody waits for are ignored."""
        with self._lock:
            for command_id in command_ids:
                waiter = self._waiters.get(command_id)
                if waiter is not None and waiter.result is None:
                    waiter.result = result
                    waiter.event.set()
