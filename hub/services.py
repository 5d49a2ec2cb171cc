"""The typed container of the hub's services, built by the composition root (hub.runtime)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.alerts import AlertBook
from hub.auth import FailureLimiter, TokenStore
from hub.clock import Clock
from hub.eventbus import EventBus
from hub.devices.livestate import LiveState
from hub.settings import Settings
from hub.topics import Topics

if TYPE_CHECKING:
    from hub.lights.service import LightService
    from hub.mqtt.client import HubMqttClient
    from hub.problems.service import ProblemService
    from hub.rankings.service import RankingService
    from hub.registry.store import Registry
    from hub.tsdb.base import TimeSeriesStore
    from hub.tsdb.writer import DurableWriter


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
    auth_failures: FailureLimiter = field(default_factory=FailureLimiter)
    mqtt: HubMqttClient | None = None
    commands: Any = None  # hub.mqtt.publisher.CommandPublisher: commands' own paho clients, if any
    snapshots: Any = None  # hub.snapshots.service.SnapshotService
    broadcasts: Any = None  # hub.broadcasts.service.BroadcastService
    problems: ProblemService | None = None  # the problem ledger (hub.problems)
    rankings: RankingService | None = None  # village scoring (hub.rankings)
    lights: LightService | None = None  # street lights (hub.lights)
    started_at: float = 0.0

    @property
    def mqtt_connected(self) -> bool:
        """Whether the hub's MQTT connection is up now (readiness, the overview)."""
        return self.mqtt is not None and self.mqtt.connected.is_set()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        """The hub's publisher for commands (PROTOCOL §6)."""
        if self.commands is not None:
            self.commands.publish(topic, payload, qos, retain, properties)
            return
        if self.mqtt is None:
            raise RuntimeError("MQTT client not started")
        self.mqtt.publish(topic, payload, qos=qos, retain=retain, properties=properties)

    def village_of(self, device_id: str) -> str | None:
        dev = self.registry.get(device_id)
        return dev.village if dev else None
