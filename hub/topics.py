"""MQTT topic grammar of PROTOCOL §1–2: pure functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_ID_RE: Final = re.compile(ID_PATTERN)

Channel = Literal["status", "heartbeat", "snapshot", "event", "ack", "cmd"]
DEVICE_CHANNELS: Final[frozenset[str]] = frozenset(
    {"status", "heartbeat", "snapshot", "event", "ack", "cmd"}
)
INBOUND_CHANNELS: Final[tuple[str, ...]] = ("status", "heartbeat", "snapshot", "event", "ack")


def is_valid_id(value: object) -> bool:
    """Device, village and group ids: `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$` (no wildcards, no control chars)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    device_id: str
    channel: str


DEFAULT_ROOT = "vhub/v1"  # PROTOCOL §8 VH_TOPIC_ROOT's default (hub.settings)


@dataclass(frozen=True, slots=True)
class Topics:
    """Builds and parses the topics under one root (default `vhub/v1`)."""

    root: str = DEFAULT_ROOT

    def device(self, device_id: str, channel: str) -> str:
        return f"{self.root}/dev/{device_id}/{channel}"

    def cmd(self, device_id: str) -> str:
        return self.device(device_id, "cmd")

    def status(self, device_id: str) -> str:
        return self.device(device_id, "status")

    @property
    def hub_status(self) -> str:
        return f"{self.root}/hub/status"

    def inbound_filter(self, channel: str) -> str:
        return f"{self.root}/dev/+/{channel}"

    def parse(self, topic: str) -> DeviceTopic | None:
        """`vhub/v1/dev/{id}/{channel}` → DeviceTopic; anything else → None.

        The device id comes only from the topic (which the broker ACL pins to the
        device's username), never from the payload.
        """
        prefix = self.root + "/dev/"
        if not topic.startswith(prefix):
            return None
        rest = topic[len(prefix) :]
        device_id, sep, channel = rest.partition("/")
        if not sep or channel not in DEVICE_CHANNELS or not is_valid_id(device_id):
            return None
        return DeviceTopic(device_id, channel)
