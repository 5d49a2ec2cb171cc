"""The time-series store interface every backend implements, and its errors.

Backends are synchronous and thread-safe: the ingest writer calls them from worker
threads; the API calls the read side through a thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from hub.messages import Point

Aggregate = Literal["mean", "min", "max", "last", "count", "sum"]


class StoreError(Exception):
    """Base of store errors."""


class TransientStoreError(StoreError):
    """Unreachable, timeout, 5xx, 429: try again later (after `retry_after` s when given)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedBatchError(StoreError):
    """The store refused the batch (400/413/422): retrying it as it is will not help.

    `reason` is the server's own words. The writer splits the batch to keep the good points
    and dead-letters the bad ones.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    measurement: str
    field: str
    start: float  # Unix s, inclusive
    end: float  # Unix s, exclusive
    every: float  # bucket width in s
    aggregate: Aggregate = "mean"
    tags: tuple[tuple[str, str], ...] = ()  # equality filters, e.g. (("device", "cam-001"),)


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float
    value: float | None


class TimeSeriesStore(Protocol):
    name: str

    def setup(self) -> None:
        """Create the database / retention policy / tables when missing."""

    def ping(self) -> bool:
        """True when the store answers now (cheap; used by /readyz)."""

    def write_lines(self, lines: list[str]) -> None:
        """Write line-protocol lines (precision: seconds with a fraction → ns in the line).

        Raises TransientStoreError or RejectedBatchError.
        """

    def series(self, q: SeriesQuery) -> list[Bucket]:
        """Time-bucketed aggregate of one numeric (or bool) field."""

    def read_points(
        self,
        measurement: str,
        tags: dict[str, str] | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 10_000,
    ) -> list[Point]:
        """Raw points in time order (tests, exports, the device detail page)."""

    def close(self) -> None: ...
