"""Per-speaker runtime: applies the arbiter's decisions, sends commands, follows acks.

Not thread-safe by itself: the BroadcastService calls it under its lock. Every state change
is collected and handed out by `drain()` so the service can persist it in one batch and
emit the `delivery` points, events and alerts.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub import metrics
from hub.broadcasts.arbiter import Item, decide, next_from_queue
from hub.broadcasts.model import BUSY_STATES, Delivery, IsOnline, Publisher, may_move
from hub.topics import Topics

log = logging.getLogger(__name__)

STOP_TTL_S = 60.0
_PLAYED = metrics.broadcast_commands.labels(action="play")
_RESENT = metrics.broadcast_commands.labels(action="resend")
_STOPPED = metrics.broadcast_commands.labels(action="stop")
PLAYING_TIMEOUT_S = 4 * 3600.0  # a play still `playing` this long after it was sent is given up


def new_command_id() -> str:
    """32 hex characters (PROTOCOL §6 allows up to 64): the time in microseconds (56 bits), then
    72 random bits. Ids made later sort after earlier ones, so a fan-out's deliveries are
    appended to the end of the database's command-id index instead of scattered through it
    (INSERTs of 10,000 deliveries ~25 % cheaper; see docs/benchmarks.md, "Fan-out, sixth step")."""
    return f"{time.time_ns() // 1000 & 0xFFFFFFFFFFFFFF:014x}{os.urandom(9).hex()}"


@dataclass(slots=True)
class Change:
    delivery: Delivery  # the live record: its state may have moved on by the time it is recorded
    old: str
    ts: float
    new: str | None = None  # the state this change set (None: no state change, e.g. a resend)

    @property
    def to(self) -> str:
        return self.old if self.new is None else self.new


@dataclass(slots=True)
class SpeakerRuntime:
    current: str | None = None  # command id occupying the speaker (sent/received/playing)
    queue: set[str] = field(default_factory=set)  # due, waiting for the speaker to be free
    offline: set[str] = field(default_factory=set)  # due while it was offline


def _order(d: Delivery) -> tuple[int, float, str]:
    """The arbiter's queue order (Item.sort_key) straight from a delivery."""
    return (-d.priority, d.due_at, d.command_id)


def _item(d: Delivery) -> Item:
    return Item(d.command_id, d.broadcast_id, d.priority, d.due_at, d.expires_at)


class Dispatcher:
    def __init__(
        self, *, topics: Topics, publish: Publisher, is_online: IsOnline,
        play_body: Callable[[Delivery], dict[str, Any]], ack_timeout_s: float,
        stop_before_preempt: bool = False,
    ) -> None:
        self.stop_before_preempt = stop_before_preempt
        self._tails: dict[str, str] = {}
        self.topics = topics
        self._publish = publish
        self._is_online = is_online
        self._play_body = play_body
        self.ack_timeout_s = ack_timeout_s
        self.open: dict[str, Delivery] = {}
        self.speakers: dict[str, SpeakerRuntime] = {}
        self.stop_ids: dict[str, float] = {}
        self.changes: list[Change] = []
        self.sent_count = 0
        # plays and resends since the last drain(): counted into the metric once per batch
        # (a Counter.inc takes its lock: ~5 µs per play in a 10,000-speaker fan-out)
        self._plays = 0
        self._resends = 0

    # --- bookkeeping ------------------------------------------------------------
    def _rt(self, device_id: str) -> SpeakerRuntime:
        try:
            return self.speakers[device_id]
        except KeyError:
            rt = self.speakers[device_id] = SpeakerRuntime()
            return rt

    def set_state(self, d: Delivery, state: str, ts: float, reason: str | None = None,
                  *, from_device: bool = False, force: bool = False) -> bool:
        if not force and not may_move(d.state, state, from_device=from_device):
            return False
        old = d.state
        d.state = state
        d.updated_at = ts
        if reason is not None:
            d.reason = reason
        rt = self._rt(d.device_id)
        if d.terminal:
            self.open.pop(d.command_id, None)
            rt.queue.discard(d.command_id)
            rt.offline.discard(d.command_id)
        else:
            self.open[d.command_id] = d
        self.changes.append(Change(d, old, ts, state))
        return True

    def drain(self) -> list[Change]:
        if self._plays:
            _PLAYED.inc(self._plays)
            self._plays = 0
        if self._resends:
            _RESENT.inc(self._resends)
            self._resends = 0
        out, self.changes = self.changes, []
        return out

    def load(self, deliveries: list[Delivery]) -> None:
        """Rebuild the runtime from the open deliveries stored before a restart."""
        for d in deliveries:
            self.open[d.command_id] = d
            rt = self._rt(d.device_id)
            if d.state in BUSY_STATES:
                if rt.current is None or self.open[rt.current].priority < d.priority:
                    rt.current = d.command_id
            elif d.state == "offline":
                rt.offline.add(d.command_id)

    def add(self, d: Delivery) -> None:
        self.open[d.command_id] = d
        self._rt(d.device_id)

    def current_item(self, device_id: str) -> Item | None:
        cid = self._rt(device_id).current
        d = self.open.get(cid) if cid else None
        return _item(d) if d is not None else None

    # --- commands ---------------------------------------------------------------
    def _send(self, device_id: str, body: dict[str, Any]) -> None:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        self._publish(self.topics.cmd(device_id), payload, 1, False, None)
        self.sent_count += 1

    def _play_tail(self, d: Delivery) -> str:
        """The part of a play command shared by every speaker of a broadcast, encoded once."""
        tail = self._tails.get(d.broadcast_id)
        if tail is None:
            encoded = json.dumps(self._play_body(d), ensure_ascii=False, separators=(",", ":"))
            tail = self._tails[d.broadcast_id] = encoded[1:]
            if len(self._tails) > 1000:
                self._tails.clear()
        return tail

    def send_play(self, d: Delivery, now: float) -> None:
        # The command id is hex (ours) and the times are floats: no JSON escaping needed.
        head = (f'{{"id":"{d.command_id}","action":"play","ts":{float(now)!r},'
                f'"expires_at":{float(d.expires_at)!r},')
        payload = (head + self._play_tail(d)).encode()
        self._publish(self.topics.cmd(d.device_id), payload, 1, False, None)
        self.sent_count += 1
        if d.send_count:
            self._resends += 1
        else:
            self._plays += 1
        d.sent_at = now
        d.send_count += 1
        if d.state in ("pending", "offline"):
            self.set_state(d, "sent", now, "")
        else:
            self.changes.append(Change(d, d.state, now))  # resend: persist send_count

    def send_stop(self, device_id: str, broadcast_id: str, now: float) -> None:
        sid = new_command_id()
        self.stop_ids[sid] = now
        self._send(device_id, {"id": sid, "action": "stop", "ts": now,
                               "expires_at": now + STOP_TTL_S, "broadcast_id": broadcast_id})
        _STOPPED.inc()

    # --- arbitration -------------------------------------------------------------
    def serve(self, d: Delivery, now: float) -> str:
        """A delivery is due on its speaker now: apply the arbiter's decision."""
        rt = self._rt(d.device_id)
        decision = decide(_item(d), online=self._is_online(d.device_id),
                          current=self.current_item(d.device_id), now=now)
        if decision.kind == "expired":
            self.set_state(d, "expired", now, d.reason or "not_served_in_time")
        elif decision.kind == "offline":
            rt.queue.discard(d.command_id)
            rt.offline.add(d.command_id)
            self.set_state(d, "offline", now)
        elif decision.kind == "queue":
            assert decision.behind is not None
            rt.queue.add(d.command_id)
            reason = f"waiting_for:{decision.behind.broadcast_id}"
            if d.reason != reason:
                d.reason = reason
                self.changes.append(Change(d, d.state, now))
        else:
            stop = decision.stop
            # PROTOCOL §6: a higher-priority play makes the speaker stop the current one and
            # ack it `preempted`; an explicit `stop` first is optional.
            if stop is not None and self.stop_before_preempt:
                self.send_stop(d.device_id, stop.broadcast_id, now)
            self.send_play(d, now)  # if the publisher raises, nothing has changed: next tick retries
            if stop is not None:
                stopped = self.open.get(stop.command_id)
                if stopped is not None:
                    self.set_state(stopped, "preempted", now, f"preempted_by:{d.broadcast_id}")
            rt.queue.discard(d.command_id)
            rt.offline.discard(d.command_id)
            rt.current = d.command_id
        return decision.kind

    def release(self, device_id: str, command_id: str, now: float) -> None:
        """The speaker finished `command_id`: give it the best waiting item."""
        rt = self._rt(device_id)
        if rt.current != command_id:
            return
        rt.current = None
        self.serve_queue(device_id, now)

    def serve_queue(self, device_id: str, now: float) -> None:
        rt = self._rt(device_id)
        if rt.current is not None or not rt.queue:
            return
        waiting = [_item(self.open[c]) for c in rt.queue if c in self.open]
        nxt, expired, _rest = next_from_queue(waiting, now)
        for i in expired:
            self.set_state(self.open[i.command_id], "expired", now, "waited_too_long")
        if nxt is not None:
            self.serve(self.open[nxt.command_id], now)

    # --- device input ------------------------------------------------------------
    def on_ack(self, d: Delivery, state: str, reason: str, now: float) -> bool:
        moved = self.set_state(d, state, now, reason or None, from_device=True)
        rt = self._rt(d.device_id)
        if moved and state in ("received", "playing") and rt.current is None:
            rt.current = d.command_id
        if d.terminal:
            self.release(d.device_id, d.command_id, now)
        return moved

    def on_heartbeat(self, device_id: str, state: str | None, playing: str | None,
                     now: float) -> None:
        rt = self._rt(device_id)
        if playing:
            d = self.open.get(playing)
            if d is not None and d.device_id == device_id and d.state in ("sent", "received"):
                self.set_state(d, "playing", now, from_device=True)
                rt.current = rt.current or d.command_id
        elif state == "idle" and rt.current is not None:
            d = self.open.get(rt.current)
            if d is not None and d.state == "playing":
                # It played and is now idle: its final ack was lost.
                self.set_state(d, "done", now, "inferred_from_heartbeat", from_device=True)
                self.release(device_id, d.command_id, now)

    def on_reconnect(self, device_id: str, now: float) -> None:
        rt = self._rt(device_id)
        waiting = sorted((self.open[c] for c in rt.offline if c in self.open), key=_order)
        rt.offline.clear()
        for d in waiting:
            self.set_state(d, "pending", now, "reconnected", force=True)
            self.serve(d, now)

    def check_timeouts(self, now: float) -> None:
        """Resend plays whose `received` ack is late; expire what can no longer start."""
        for d in list(self.open.values()):
            if d.state == "sent":
                if now >= d.expires_at:
                    self.set_state(d, "expired", now, "no_ack")
                    self.release(d.device_id, d.command_id, now)
                elif (d.sent_at is not None and now - d.sent_at >= self.ack_timeout_s
                      and self._is_online(d.device_id)):
                    log.info("no received ack from %s for %s; resending", d.device_id, d.command_id)
                    self.send_play(d, now)
            elif d.state == "received" and now >= d.expires_at + self.ack_timeout_s:
                # Received but never reported playing before it expired: the speaker is free.
                self.set_state(d, "expired", now, "not_started")
                self.release(d.device_id, d.command_id, now)
            elif (d.state == "playing" and d.sent_at is not None
                  and now - d.sent_at >= PLAYING_TIMEOUT_S):
                # Its final ack was lost and no idle heartbeat came: stop waiting for it.
                self.set_state(d, "failed", now, "no_final_ack")
                self.release(d.device_id, d.command_id, now)
            elif d.state == "offline" and now >= d.expires_at:
                self.set_state(d, "expired", now, "offline_until_expiry")
            elif (d.state == "pending" and d.command_id in self._rt(d.device_id).queue
                  and now >= d.expires_at):
                self.set_state(d, "expired", now, "waited_too_long")
        for sid, at in list(self.stop_ids.items()):
            if now - at > STOP_TTL_S * 10:
                del self.stop_ids[sid]

    def due_pending(self, now: float) -> list[Delivery]:
        """Pending deliveries whose time has come and that are not already waiting in a queue."""
        out = [d for d in self.open.values()
               if d.state == "pending" and d.due_at <= now
               and d.command_id not in self._rt(d.device_id).queue]
        out.sort(key=_order)
        return out
