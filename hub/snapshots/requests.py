"""Snapshot requests and their answers: the PROTOCOL §6 `snapshot` command sent to a camera,
the wait for the snapshot that answers it (MQTT 5 user property `cmd_id`), and the
listeners told of every stored answer (the problem ledger's fresh "after" photos)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from hub.clock import Clock
from hub.ports import Publisher
from hub.snapshots.commands import CommandWaiters, SnapshotRequest, snapshot_command
from hub.snapshots.config import SnapshotConfig

log = logging.getLogger(__name__)

AnswerListener = Callable[[str, frozenset[str], bytes, float], None]  # (device, command ids, JPEG, ts)


class SnapshotRequests:
    def __init__(self, *, publisher: Publisher, clock: Clock, topic_root: str, config: SnapshotConfig) -> None:
        self.publisher = publisher
        self.clock = clock
        self.topic_root = topic_root
        self.config = config
        self._waiters = CommandWaiters()
        self._listeners: list[AnswerListener] = []

    def add_answer_listener(self, listener: AnswerListener) -> None:
        """`listener(device, command_ids, jpeg, ts)` runs (in a worker) for every stored
        snapshot that answers commands, also after `request` stopped waiting."""
        self._listeners.append(listener)

    def request(self, device_id: str, wait_s: float = 0.0, command_id: str | None = None) -> SnapshotRequest:
        """Send the `snapshot` command; with wait_s > 0, wait for the answer (a snapshot with
        user property cmd_id) until it is analysed and stored, or until the timeout.
        `command_id`: the caller's own id (to recognise the answer in an answer listener)."""
        now, cmd_id = self.clock.now(), command_id or uuid.uuid4().hex
        expires_at = now + self.config.command_ttl_s
        waiter = self._waiters.register(cmd_id) if wait_s > 0 else None
        try:
            self.publisher.publish(f"{self.topic_root}/dev/{device_id}/cmd",
                                   snapshot_command(cmd_id, now, self.config.command_ttl_s), qos=1)
            if waiter is None:
                return SnapshotRequest(cmd_id, device_id, "sent", expires_at)
            waiter.event.wait(min(wait_s, self.config.max_wait_s))
        finally:
            self._waiters.discard(cmd_id)
        if waiter.result is None:
            return SnapshotRequest(cmd_id, device_id, "timeout", expires_at)
        return SnapshotRequest(cmd_id, device_id, waiter.result["state"], expires_at, waiter.result.get("snapshot"))

    def refuse(self, command_ids: Iterable[str], reason: str) -> None:
        """The snapshot that would answer these commands was rejected."""
        self._waiters.answer(command_ids, {"state": "rejected", "reason": reason})

    def answer(self, device_id: str, command_ids: set[str], jpeg: bytes, ts: float,
               summary: dict[str, Any]) -> None:
        """A stored snapshot answers these commands: wake the waiting requests, tell the listeners."""
        self._waiters.answer(command_ids, {"state": "answered", "snapshot": summary})
        if command_ids:
            for listener in self._listeners:
                try:
                    listener(device_id, frozenset(command_ids), jpeg, ts)
                except Exception:
                    log.exception("snapshot answer listener failed for %s", device_id)
