"""One batch to the store: split refused batches, stop on transient errors (pure policy + I/O
through the store interface only), and the retry delay policy."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable

from hub import metrics
from hub.tsdb.base import RejectedBatchError, StoreError, TimeSeriesStore, TransientStoreError
from hub.tsdb.lineparse import line_measurement

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 600.0

DeadLetter = Callable[[list[str], RejectedBatchError], None]


def next_delay(
    attempt: int, retry_after: float | None, initial: float = 0.5, maximum: float = 30.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before the next attempt: the server's Retry-After when given, else exponential
    backoff (`initial` · 2^attempt, capped at `maximum`) with jitter in [½, 1]."""
    if retry_after is not None:
        return min(max(retry_after, 0.05), MAX_RETRY_AFTER_S)
    base = min(maximum, initial * 2.0 ** min(attempt, 30))
    return base * (0.5 + rand() / 2)


class Unwritten(Exception):
    """A transient error stopped a (bisected) write: `remaining` lines are not in the store."""

    def __init__(self, remaining: list[str], error: TransientStoreError, stored: Counter[str]) -> None:
        super().__init__(str(error))
        self.remaining = remaining
        self.error = error
        self.stored = stored


def write_bisecting(
    store: TimeSeriesStore, lines: list[str], dead_letter: DeadLetter
) -> Counter[str]:
    """Write `lines`; a refused batch is split in halves until each bad line stands alone and
    goes to `dead_letter` with the server's reason. Returns lines stored per measurement.

    Raises Unwritten on a transient error, with the lines not yet stored (in order) and the
    count of those that were. A store bug (any other StoreError, OSError, ValueError) is
    treated as transient: points are kept, never dropped.
    """
    stored: Counter[str] = Counter()
    stack = [lines]
    while stack:
        chunk = stack.pop()
        t0 = time.perf_counter()
        try:
            store.write_lines(chunk)
        except RejectedBatchError as err:
            metrics.write_errors.labels("rejected").inc()
            if len(chunk) == 1:
                dead_letter(chunk, err)
            else:
                mid = len(chunk) // 2
                stack.append(chunk[mid:])
                stack.append(chunk[:mid])
            continue
        except TransientStoreError as err:
            metrics.write_errors.labels("transient").inc()
            rest = [line for c in reversed(stack) for line in c]
            raise Unwritten(chunk + rest, err, stored) from err
        except (StoreError, OSError, ValueError) as err:
            metrics.write_errors.labels("error").inc()
            log.exception("time-series store failed unexpectedly")
            rest = [line for c in reversed(stack) for line in c]
            raise Unwritten(chunk + rest, TransientStoreError(str(err)), stored) from err
        metrics.write_latency.observe(time.perf_counter() - t0)
        metrics.points_written.labels(store.name).inc(len(chunk))
        stored.update(map(line_measurement, chunk))
    return stored
