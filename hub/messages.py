"""Messages passed between the MQTT edge, the ingest workers and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)  # not frozen: built once per message on the hot path, where frozen costs ~1.5 µs
class InboundMessage:
    """One MQTT message from a device, as handed over by the network thread. Treat as read-only."""

    topic: str
    device_id: str
    channel: str  # status | heartbeat | snapshot | event | ack
    payload: bytes
    qos: int
    retain: bool
    mid: int
    received_at: float  # hub clock, Unix seconds
    properties: dict[str, str] = field(default_factory=dict)  # MQTT 5 user properties
    session: int = 0  # which connection of its client it came on (acks go on that one only)


@dataclass(frozen=True, slots=True)
class Point:
    """One time-series point (the InfluxDB data model)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]  # bool | int | float | str
    time: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class Rejection:
    """A counted, logged refusal of input (`hub.rejections`). `reason` is a short stable label for
    metrics; with `field`, one heartbeat field was refused and the rest of the message kept."""

    kind: str  # heartbeat | status | snapshot | event | ack | topic | api | light
    reason: str
    device_id: str | None = None
    detail: str = ""
    field: str = ""
