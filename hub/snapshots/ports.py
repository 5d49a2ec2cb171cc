"""The shapes of the collaborators the snapshot service is given (wired by hub.runtime)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hub.messages import Point

PointSink = Callable[[list[Point]], None]
Lookup = Callable[[str], "tuple[str, str] | None"]  # device id → (village, group), None if unknown
HeartbeatLastSeen = Callable[[str], "float | None"]


class AlertSink(Protocol):
    def raise_alert(
        self, key: str, *, device_id: str | None, type: str, severity: str, message: str, ts: float
    ) -> Any: ...

    def clear_alert(self, key: str, ts: float) -> Any: ...


class EventSink(Protocol):
    def publish(self, type_: str, data: dict[str, Any], /) -> Any: ...


class Publisher(Protocol):
    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
        properties: dict[str, str] | None = None,
    ) -> Any: ...
