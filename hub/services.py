"""The typed container of the hub's services, built by the composition root (hub.bootstrap).

Every capability is always present; only the MQTT connections are attached when the hub
starts (`MqttLinks`), since they need the running hub's inbox and receiver.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.alerts import AlertBook
from hub.auth import FailureLimiter, TokenStore
from hub.clock import Clock
from hub.devices.livestate import LiveState
from hub.eventbus import EventBus
from hub.settings import Settings
from hub.topics import Topics

if TYPE_CHECKING:
    from hub.broadcasts.service import BroadcastService
    from hub.lights.service import LightService
    from hub.mqtt.client import HubMqttClient
    from hub.mqtt.publisher import CommandPublisher
    from hub.problems.service import ProblemService
    from hub.rankings.service import RankingService
    from hub.registry.store import Registry
    from hub.snapshots.service import SnapshotService
    from hub.tsdb.base import TimeSeriesStore
    from hub.tsdb.writer import DurableWriter


@dataclass
class MqttLinks:
    """The hub's MQTT connections: the paho client (status, event, snapshot; publishing), the
    command publishers (`<client id>-cmd<n>`, if any) and the lean receiver's connection
    (`<client id>-rx`, hub.ingest.hubrx, if in use). Set by the composition root at start."""

    client: HubMqttClient | None = None
    commands: CommandPublisher | None = None
    receiver_connected: threading.Event | None = None

    @property
    def connected(self) -> bool:
        """Whether every connection the hub receives on is up now."""
        if self.client is None or not self.client.connected.is_set():
            return False
        return self.receiver_connected is None or self.receiver_connected.is_set()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        """The hub's publisher for commands (PROTOCOL §6)."""
        if self.commands is not None:
            self.commands.publish(topic, payload, qos, retain, properties)
            return
        if self.client is None:
            raise RuntimeError("MQTT client not started")
        self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)


@dataclass
class Services:
    settings: Settings
    clock: Clock
    topics: Topics
    bus: EventBus
    live: LiveState
    alerts: AlertBook
    tokens: TokenStore
    registry: Registry
    store: TimeSeriesStore
    writer: DurableWriter
    links: MqttLinks
    snapshots: SnapshotService
    broadcasts: BroadcastService
    problems: ProblemService  # the problem ledger (hub.problems)
    rankings: RankingService  # village scoring (hub.rankings)
    lights: LightService  # street lights (hub.lights)
    auth_failures: FailureLimiter = field(default_factory=FailureLimiter)
    started_at: float = 0.0

    @property
    def mqtt(self) -> HubMqttClient | None:
        """The paho client, once the hub has started."""
        return self.links.client

    @property
    def mqtt_connected(self) -> bool:
        """Whether the hub's MQTT connections are up now (readiness, the overview, vh_mqtt_connected)."""
        return self.links.connected

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        self.links.publish(topic, payload, qos, retain, properties)

    def village_of(self, device_id: str) -> str | None:
        dev = self.registry.get(device_id)
        return dev.village if dev else None
