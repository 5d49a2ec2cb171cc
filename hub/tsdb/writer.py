"""DurableWriter: batches lines to the time-series store; nothing lost while the store is away.

Two ways in:
- `write_durable(lines)`: returns once the lines are durable — accepted by the store or
  fsynced in the on-disk spool. Ingest calls it before acknowledging QoS 1 messages.
  Concurrent callers are group-committed into one batch by the writer thread.
- `submit(lines)`: non-blocking; flushed by size (`batch_size`) or every `flush_s`.

One writer thread delivers batches in order: to the store while the spool is empty and the
store is not in backoff (one attempt, bounded by the store's timeout), else to the spool.
While the spool holds anything, new batches go behind it (order kept) and the replayer
thread drains it in order once the store answers, retrying with exponential backoff that
honours Retry-After. A refused batch (RejectedBatchError) is bisected: the good lines are
stored, each bad line goes to the dead-letter file with the server's reason.

States reported to `on_state(state, message)`: `ok`, `spooling`, `spool_full` (on each
change), and the event `dead_letter` (each time lines are refused). The callback runs on
the writer's own threads: it may `submit()` but must not wait on the writer
(`write_durable`, `flush`), and should be quick (raise an alert, publish an event).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub import metrics
from hub.clock import Clock
from hub.tsdb.base import RejectedBatchError, TimeSeriesStore, TransientStoreError
from hub.tsdb.batchwrite import Unwritten, next_delay, write_bisecting
from hub.tsdb.deadletter import DeadLetterFile
from hub.tsdb.lineparse import line_measurement
from hub.tsdb.spool import Spool, SpoolFullError

log = logging.getLogger(__name__)

StateCallback = Callable[[str, str], None]

FULL_RETRY_S = 0.5  # how often a batch refused by a full spool is tried again
TICK_S = 0.1  # longest sleep slice: waits follow the injected clock, even a ManualClock


@dataclass(frozen=True, slots=True)
class WriterStatus:
    state: str  # ok | spooling | spool_full
    buffered_lines: int  # in memory, not yet durable
    spooled_lines: int
    spooled_by_measurement: dict[str, int]
    spool_bytes: int
    store_ready: bool  # False while backing off after a failure


@dataclass
class _Request:
    lines: list[str]
    done: threading.Event | None = None  # set when durable (write_durable, flush)
    ok: bool = False


class DurableWriter:
    def __init__(
        self,
        store: TimeSeriesStore,
        spool_dir: Path,
        *,
        batch_size: int = 5000,
        flush_s: float = 0.2,
        max_spool_bytes: int = 1 << 30,
        clock: Clock,
        on_state: StateCallback | None = None,
        dead_letter_path: Path | None = None,
        max_buffer_lines: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_s = min(flush_s, 1.0)
        self.clock = clock
        self.on_state = on_state
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.max_buffer_lines = max_buffer_lines or 20 * batch_size
        self.spool = Spool(spool_dir, max_spool_bytes)
        self.dead_letters = DeadLetterFile(dead_letter_path or Path(spool_dir) / "dead-letter.jsonl")
        self.state = "ok"
        self._queue: deque[_Request] = deque()
        self._buffered = 0
        self._waiting = 0  # queued requests someone waits for (write_durable, flush)
        self._oldest_at: float | None = None
        self._cond = threading.Condition()
        self._deliver_lock = threading.Lock()
        self._replay_wake = threading.Event()
        self._stopping = threading.Event()
        self._attempt = 0
        self._retry_at = 0.0  # clock.monotonic() before which the store is not tried
        self._spool_labels: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._running = False  # guarded by _cond: requests are queued only while True
        self._closed = False
        self._publish_spool_metrics()

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        if not self.spool.is_empty():
            n = sum(self.spool.pending_counts().values())
            self._set_state("spooling", f"{n} points from before the restart wait in the spool")
        with self._cond:
            self._running = True
        for name, target in (("tsdb-writer", self._run_writer), ("tsdb-replayer", self._run_replayer)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush every buffered line to the store or the spool, then stop the threads."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._replay_wake.set()
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        with self._cond:
            self._running = False  # from here on, callers write inline (and get False)
        self._flush_inline()  # anything queued after the writer thread left
        with self._deliver_lock:
            self._closed = True
            self.spool.close()

    # -- ways in ----------------------------------------------------------------------

    def submit(self, lines: list[str]) -> None:
        """Buffer lines; flushed within `flush_s`. Never blocks (drops, counted, past the bound)."""
        if not lines:
            return
        with self._cond:
            if self._closed:
                self._count_dropped(lines, "the writer is stopped")
                return
            if self._buffered + len(lines) > self.max_buffer_lines:
                self._count_dropped(lines, "memory buffer full (store away and spool full)")
                return
            self._enqueue(_Request(lines))
            if self._buffered >= self.batch_size:
                self._cond.notify()

    def write_durable(self, lines: list[str], timeout: float | None = None) -> bool:
        """Return once `lines` are in the store or fsynced in the spool (True), or after
        `timeout` (False: they stay queued). Never raises for store errors."""
        req = _Request(list(lines), threading.Event())
        with self._cond:
            running = self._running
            if running:
                self._enqueue(req)
                self._cond.notify()
        if not running:  # not started yet, or stopped: one inline delivery
            return self._deliver_now(lines)
        assert req.done is not None
        return req.done.wait(timeout) and req.ok

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted before this call is durable."""
        return self.write_durable([], timeout)

    def status(self) -> WriterStatus:
        """A snapshot for health pages and tests."""
        with self._cond:
            buffered = self._buffered
        counts = self.spool.pending_counts()
        return WriterStatus(self.state, buffered, sum(counts.values()), dict(counts),
                            self.spool.pending_bytes, self.clock.monotonic() >= self._retry_at)

    # -- the writer thread --------------------------------------------------------------

    def _enqueue(self, req: _Request) -> None:
        self._queue.append(req)
        self._buffered += len(req.lines)
        self._waiting += req.done is not None
        if self._oldest_at is None:
            self._oldest_at = self.clock.monotonic()

    def _due_locked(self) -> bool:
        if not self._queue:
            return False
        if self._stopping.is_set() or self._buffered >= self.batch_size:
            return True
        if self._waiting:
            return True
        return self._oldest_at is not None and self.clock.monotonic() - self._oldest_at >= self.flush_s

    def _take_locked(self) -> list[_Request]:
        taken: list[_Request] = []
        n = 0
        while self._queue and (not taken or n + len(self._queue[0].lines) <= self.batch_size):
            req = self._queue.popleft()
            taken.append(req)
            n += len(req.lines)
            self._waiting -= req.done is not None
        self._buffered -= n
        self._oldest_at = self.clock.monotonic() if self._queue else None
        return taken

    def _run_writer(self) -> None:
        while True:
            with self._cond:
                while not self._due_locked():
                    if self._stopping.is_set() and not self._queue:
                        return
                    self._cond.wait(TICK_S)
                reqs = self._take_locked()
            lines = [line for r in reqs for line in r.lines]
            if self._deliver_now(lines):
                self._finish(reqs, True)
            elif self._stopping.is_set():
                self._count_dropped(lines, "stopping with the store away and the spool full")
                self._finish(reqs, False)
            else:
                with self._cond:  # back to the front, try again shortly (backpressure)
                    for r in reversed(reqs):
                        self._queue.appendleft(r)
                        self._buffered += len(r.lines)
                        self._waiting += r.done is not None
                    self._oldest_at = self._oldest_at or self.clock.monotonic()
                self._sleep(FULL_RETRY_S)

    @staticmethod
    def _finish(reqs: list[_Request], ok: bool) -> None:
        for r in reqs:
            r.ok = ok
            if r.done is not None:
                r.done.set()

    def _flush_inline(self) -> None:
        with self._cond:
            reqs = list(self._queue)
            self._queue.clear()
            self._buffered, self._oldest_at, self._waiting = 0, None, 0
        lines = [line for r in reqs for line in r.lines]
        ok = self._deliver_now(lines)
        if not ok:
            self._count_dropped(lines, "stopping with the store away and the spool full")
        self._finish(reqs, ok)

    def _deliver_now(self, lines: list[str]) -> bool:
        """Make `lines` durable: the store (one attempt) when nothing waits before them, else
        the spool. False only when the spool cannot take them (full, disk full)."""
        if not lines:
            return True
        with self._deliver_lock:
            if self._closed:
                self._count_dropped(lines, "the writer is stopped")
                return False
            if self.spool.is_empty() and self.clock.monotonic() >= self._retry_at:
                try:
                    stored = self._write_store(lines)
                    self._count_stored(stored)
                    self._store_ok()
                    # Nothing waits in the spool (it may never have taken anything: a full disk).
                    self._set_state("ok", "the store takes every write again")
                    return True
                except Unwritten as u:
                    self._count_stored(u.stored)
                    self._store_failed(u.error)
                    lines = u.remaining
            return self._to_spool(lines)

    def _to_spool(self, lines: list[str]) -> bool:
        try:
            self.spool.append(lines)
        except SpoolFullError as err:
            self._set_state("spool_full", str(err))
            return False
        self._publish_spool_metrics()
        self._set_state("spooling", f"store unavailable: {len(lines)} points written to the spool")
        self._replay_wake.set()
        return True

    # -- the replayer thread ------------------------------------------------------------

    def _run_replayer(self) -> None:
        while not self._stopping.is_set():
            if self.spool.is_empty():
                self._replay_wake.wait(TICK_S * 5)
                self._replay_wake.clear()
                continue
            if self.clock.monotonic() < self._retry_at:
                self._sleep(self._retry_at - self.clock.monotonic())
                continue
            batch = self.spool.read_batch(self.batch_size)
            if batch is None:
                continue
            try:
                stored = self._write_store(batch.lines)
            except Unwritten as u:  # the stored prefix is rewritten later: same points
                self._store_failed(u.error)
                continue
            with self._deliver_lock:
                self.spool.commit(batch)
                self._count_stored(stored)
                self._store_ok()
                self._publish_spool_metrics()
                if self.spool.is_empty():
                    self._set_state("ok", "spool replayed: the store has every point")

    # -- store writes, bisecting refused batches ------------------------------------------

    def _write_store(self, lines: list[str]) -> Counter[str]:
        return write_bisecting(self.store, lines, self._dead_letter)

    def _dead_letter(self, lines: list[str], err: RejectedBatchError) -> None:
        self.dead_letters.write(lines, err.reason, err.status, self.clock.now())
        metrics.points_dead_lettered.inc(len(lines))
        for m, n in Counter(map(line_measurement, lines)).items():
            metrics.points_refused.labels(m).inc(n)
        self._notify("dead_letter", f"{len(lines)} point(s) refused by the store: {err.reason}")

    # -- state, backoff, metrics -----------------------------------------------------------

    def _store_ok(self) -> None:
        self._attempt = 0
        self._retry_at = 0.0
        metrics.store_up.set(1)

    def _store_failed(self, err: TransientStoreError) -> None:
        delay = next_delay(self._attempt, err.retry_after, self.backoff_initial, self.backoff_max)
        self._attempt += 1
        self._retry_at = self.clock.monotonic() + delay
        metrics.store_up.set(0)
        log.warning("time-series store unavailable (%s); next attempt in %.1fs", err, delay)

    def _set_state(self, state: str, message: str) -> None:
        if state == self.state:
            return
        self.state = state
        (log.info if state == "ok" else log.warning)("tsdb writer %s: %s", state, message)
        self._notify(state, message)

    def _notify(self, state: str, message: str) -> None:
        if self.on_state is None:
            return
        try:
            self.on_state(state, message)
        except Exception:
            log.exception("on_state callback failed")

    def _count_stored(self, stored: Counter[str]) -> None:
        for m, n in stored.items():
            metrics.points_stored.labels(m).inc(n)

    def _count_dropped(self, lines: list[str], why: str) -> None:
        counts = collections.Counter(map(line_measurement, lines))
        for m, n in counts.items():
            metrics.points_dropped.labels(m).inc(n)
        log.error("%d points dropped: %s (%s)", len(lines), why, dict(counts))

    def _publish_spool_metrics(self) -> None:
        counts = self.spool.pending_counts()
        for m in self._spool_labels - counts.keys():
            metrics.points_spooled.labels(m).set(0)
        for m, n in counts.items():
            metrics.points_spooled.labels(m).set(n)
        self._spool_labels |= counts.keys()
        metrics.spool_bytes.set(self.spool.pending_bytes)

    def _sleep(self, seconds: float) -> None:
        """Wait `seconds` on the injected clock, waking for stop()."""
        until = self.clock.monotonic() + seconds
        while not self._stopping.is_set():
            left = until - self.clock.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, TICK_S))
