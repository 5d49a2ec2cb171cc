"""The lifecycle both command publishers share: one thread that owns every connection, started
once, drained on stop, woken through a socket pair when messages are queued
(`hub.mqtt.leanpub`, `hub.mqtt.pahopub`)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class PublisherThread:
    """`start` / `wait_connected` / `stop` around a subclass's `_run` loop, which returns once
    `_stopping` is set; `connected` and `pending` are the subclass's. The loop selects on
    `_wake_r` too, calls `_take_wakeups` when it is readable, and clears `_signalled` before it
    drains its queue (a message queued after that wakes it again)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._signalled = False  # a wake-up byte is on its way: queueing more needs no other
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def connected(self) -> bool:
        raise NotImplementedError

    def pending(self) -> int:
        """Messages not yet acknowledged by the broker."""
        raise NotImplementedError

    def _wake(self) -> None:
        self._signalled = True
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def _take_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="mqtt-commands", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.connected():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued (waiting at most `timeout` for the broker's PUBACKs), then
        disconnect every connection."""
        deadline = time.monotonic() + timeout
        while self._thread is not None and time.monotonic() < deadline and self.pending() > 0:
            time.sleep(0.01)
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
