"""The collaborator interfaces services are built with: one definition of each.

Services take these (structural) types, the composition root passes the concrete parts:
the hub's MQTT client (`Publisher`), `hub.alerts.AlertBook` (`AlertSink`, `AlertBook`),
`hub.eventbus.EventBus` (`EventSink`), the durable writer's `submit` (`PointSink`) and
`hub.clock.SystemClock` (`Clock`). Tests pass fakes of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hub.clock import Clock
from hub.messages import Point

__all__ = ["AlertBook", "AlertSink", "Clock", "EventSink", "PointSink", "Principal", "PublishFn",
           "Publisher"]

PointSink = Callable[[list[Point]], None]
"""Takes points to store; never blocks (the writer batches them and makes them durable)."""


class Publisher(Protocol):
    """Publishes an MQTT message (the hub's MQTT client)."""

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
        properties: dict[str, str] | None = None,
    ) -> object: ...


class PublishFn(Protocol):
    """`Publisher.publish` as a function (a bound method of the hub's MQTT client)."""

    def __call__(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
        properties: dict[str, str] | None = None,
    ) -> object: ...


class AlertSink(Protocol):
    """Raises and clears alerts; both idempotent per key."""

    def raise_alert(
        self, key: str, *, device_id: str | None, type: str, severity: str, message: str, ts: float
    ) -> object: ...

    def clear_alert(self, key: str, ts: float) -> object: ...


class AlertBook(AlertSink, Protocol):
    """An `AlertSink` that also lists the open alerts."""

    def open_alerts(self) -> list[Any]: ...


class EventSink(Protocol):
    """Publishes an event to live consumers (the wall screen's stream); never blocks."""

    def publish(self, type_: str, data: dict[str, Any], ts: float | None = None) -> None: ...


class Principal(Protocol):
    """Who asks: a token's name and role (`hub.auth.Principal`)."""

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> str: ...
