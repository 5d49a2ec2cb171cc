"""Latest-wins slots: at most one waiting item per key, bounded bytes overall, and one
consumer per key at a time (so a camera's frames are handled in order)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")


class Put(Enum):
    QUEUED = "queued"
    REPLACED = "replaced"  # the key's waiting item was dropped for the new one
    OVERLOADED = "overloaded"  # refused: the byte bound would be exceeded


class LatestWinsSlots(Generic[T]):
    def __init__(self, max_bytes: int, size_of: Callable[[T], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._cond = threading.Condition()
        self._items: dict[str, T] = {}
        self._ready: deque[str] = deque()
        self._busy: set[str] = set()
        self._bytes = 0
        self._closed = False

    def put(self, key: str, item: T, merge: Callable[[T, T], None] | None = None) -> tuple[Put, T | None]:
        """Place `item` in `key`'s slot. Returns the outcome and the replaced item, if any;
        `merge(new, old)` runs under the lock before `old` is dropped."""
        size = self._size_of(item)
        with self._cond:
            old = self._items.get(key)
            new_bytes = self._bytes - (self._size_of(old) if old is not None else 0) + size
            if new_bytes > self.max_bytes:
                return Put.OVERLOADED, None
            if old is not None and merge is not None:
                merge(item, old)
            self._items[key] = item
            self._bytes = new_bytes
            if old is None and key not in self._busy:
                self._ready.append(key)
                self._cond.notify()
        return (Put.REPLACED, old) if old is not None else (Put.QUEUED, None)

    def take(self) -> tuple[str, T] | None:
        """Block until a key is ready; None once closed. Call `done(key)` after handling it."""
        with self._cond:
            while not self._closed and not self._ready:
                self._cond.wait()
            if self._closed:
                return None
            key = self._ready.popleft()
            item = self._items.pop(key)
            self._bytes -= self._size_of(item)
            self._busy.add(key)
            return key, item

    def done(self, key: str) -> None:
        with self._cond:
            self._busy.discard(key)
            if key in self._items:  # a newer one arrived meanwhile
                self._ready.append(key)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self) -> list[tuple[str, T]]:
        """Remove and return every waiting item (at shutdown, after close)."""
        with self._cond:
            items = list(self._items.items())
            self._items.clear()
            self._ready.clear()
            self._bytes = 0
            self._cond.notify_all()
        return items

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def waiting(self) -> int:
        return len(self._items)

    @property
    def waiting_bytes(self) -> int:
        return self._bytes
