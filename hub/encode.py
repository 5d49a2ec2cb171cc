"""Point sinks: services hand `Point`s over; they are encoded once and buffered by the writer."""

from __future__ import annotations

from collections.abc import Callable

from hub.messages import Point
from hub.tsdb.lineprotocol import encode_points
from hub.tsdb.writer import DurableWriter


def point_sink(writer: DurableWriter) -> Callable[[list[Point]], None]:
    def emit(points: list[Point]) -> None:
        lines = encode_points(points)
        if lines:
            writer.submit(lines)

    return emit
