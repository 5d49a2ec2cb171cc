"""In-process stream of state changes for the wall screen and other live consumers.

Any thread may `publish`; subscribers are asyncio consumers (one per WebSocket client).
Each subscriber has a bounded queue: a client that cannot keep up is told to resync
(`{"type": "resync"}`) instead of slowing the hub down.

Events from other threads (ingest) are gathered and handed to the loop with one wake-up per
burst, not one each (10,000 devices coming online after a broker restart are 10,000 events),
and none at all while no one subscribes.

Event shape (also the wall screen's WebSocket message): `{"type": str, "ts": float, "data": {...}}`.
Types in use: `presence`, `heartbeat`, `alert`, `alert_cleared`, `snapshot`, `delivery`,
`broadcast`, `health`, `resync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from hub.clock import Clock

Event = dict[str, Any]


class EventBus:
    def __init__(self, queue_size: int = 1000, *, clock: Clock) -> None:
        self._queue_size = queue_size
        self._clock: Clock = clock
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._pending: deque[Event] = deque()  # from other threads, until the loop drains them
        self._drain_scheduled = False  # guarded by _lock
        self.published = 0
        self.wakeups = 0  # loop wake-ups asked for by other threads

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the event loop that owns the subscribers (done by the composition root)."""
        self._loop = loop

    def publish(self, type_: str, data: dict[str, Any], ts: float | None = None) -> None:
        """Thread-safe; never blocks and never raises."""
        event: Event = {"type": type_, "ts": self._clock.now() if ts is None else ts, "data": data}
        self.published += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(event)
            return
        if not self._subscribers:
            return  # no one listens: no wake-up (a later subscriber starts from the state)
        with self._lock:
            self._pending.append(event)
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        try:
            self.wakeups += 1
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop closed meanwhile
            with self._lock:
                self._pending.clear()
                self._drain_scheduled = False

    def _drain(self) -> None:
        with self._lock:
            events = list(self._pending)
            self._pending.clear()
            self._drain_scheduled = False
        for event in events:
            self._fan_out(event)

    def _fan_out(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                # Slow client: drop what it has queued and ask it to reload the state.
                while not q.empty():
                    q.get_nowait()
                q.put_nowait({"type": "resync", "ts": event["ts"], "data": {}})

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        q: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        with self._lock:
            self._subscribers.add(q)
        try:
            yield q
        finally:
            with self._lock:
                self._subscribers.discard(q)
