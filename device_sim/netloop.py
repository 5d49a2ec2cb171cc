"""One thread drives many paho clients: a selector loop with timers.

paho-mqtt 2.x supports external loops: it tells us when a socket opens, closes,
or wants writing (`on_socket_*`), and we call `loop_read`/`loop_write` when the
selector says so and `loop_misc` once a second for keepalives. Every device
callback therefore runs in this one thread; other threads hand work in with
`call_soon_threadsafe`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final, TypeVar

import paho.mqtt.client as mqtt

from device_sim.clock import Clock, SystemClock

log = logging.getLogger(__name__)
T = TypeVar("T")
MISC_EVERY_S: Final = 1.0
MAX_WAIT_S: Final = 0.2


class Timer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class NetLoop:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._sel = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._inbox: deque[Callable[[], None]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._clients: set[mqtt.Client] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.iterations = 0

    # -- wiring paho clients ---------------------------------------------------

    def attach(self, client: mqtt.Client) -> None:
        client.on_socket_open = self._on_open
        client.on_socket_close = self._on_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._clients.add(client)

    def _on_open(self, client: mqtt.Client, _ud: Any, sock: Any) -> None:
        self._sel.register(sock, selectors.EVENT_READ, client)

    def _on_close(self, client: mqtt.Client, _ud: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(sock)

    def _on_register_write(self, client: mqtt.Client, _ud: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _on_unregister_write(self, client: mqtt.Client, _ud: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.modify(sock, selectors.EVENT_READ, client)

    # -- scheduling ------------------------------------------------------------

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        """Loop thread only."""
        t = Timer()
        heapq.heappush(self._timers, (self.clock.monotonic() + max(0.0, delay), next(self._counter), t, fn))
        return t

    def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as e:  # handed to the caller
                fut.set_exception(e)

        if threading.current_thread() is self._thread:
            run()
            return fut
        self._inbox.append(run)
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")
        return fut

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        return self.call_soon_threadsafe(fn).result(timeout)

    # -- running ---------------------------------------------------------------

    def start(self, name: str = "device-sim-loop") -> None:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        if self._thread is not None:
            self._thread.join(timeout)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def _run(self) -> None:
        misc_wall = time.monotonic()
        while not self._stop.is_set():
            self.iterations += 1
            now = self.clock.monotonic()
            wait = MAX_WAIT_S
            if self._timers:
                wait = min(wait, max(0.0, self._timers[0][0] - now))
            if self._inbox:
                wait = 0.0
            for key, mask in self._sel.select(wait):
                client = key.data
                if client is None:
                    with contextlib.suppress(BlockingIOError, OSError):
                        self._wake_r.recv(4096)
                    continue
                self._guard(client, mask)
            while self._inbox:
                self._inbox.popleft()()
            now = self.clock.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, timer, fn = heapq.heappop(self._timers)
                if not timer.cancelled:
                    try:
                        fn()
                    except Exception:
                        log.exception("simulator timer failed")
            wall = time.monotonic()
            if wall - misc_wall >= MISC_EVERY_S:  # keepalives run on real time
                misc_wall = wall
                for c in list(self._clients):
                    c.loop_misc()

    def _guard(self, client: mqtt.Client, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                client.loop_read()
            if mask & selectors.EVENT_WRITE and client.socket() is not None:
                client.loop_write()
        except Exception:
            log.exception("device client %s failed in the network loop", client._client_id)
