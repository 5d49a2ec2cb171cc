"""The hub's command publisher (PROTOCOL §6): `CommandPublisher`, as `hub.bootstrap` wires it.

On `mqtt://` the lean publisher (`hub.mqtt.leanpub`: raw sockets, one thread, QoS 1 with its own
in-flight table); on `mqtts://` a small pool of paho clients (`hub.mqtt.pahopub`), as before.
Both: `size` connections `<client id>-cmd<n>` under the hub's broker user, a device always on the
same connection (its commands arrive in the order published), `publish()` never blocks, what the
broker has not acknowledged is sent again after a reconnect.
"""

from __future__ import annotations

from typing import Literal

from hub.mqtt.leanpub import LeanCommandPublisher
from hub.mqtt.pahopub import PahoCommandPublisher
from hub.settings import MqttUrl


class CommandPublisher:
    """`impl="auto"`: lean on `mqtt://`, paho on `mqtts://`; `"paho"` forces paho (comparisons)."""

    def __init__(self, url: MqttUrl, client_id: str, *, size: int = 2, protocol: int = 5,
                 keepalive_s: int = 30, ca_file: str | None = None,
                 impl: Literal["auto", "lean", "paho"] = "auto") -> None:
        self.impl: LeanCommandPublisher | PahoCommandPublisher
        if impl == "paho" or (impl == "auto" and url.tls):
            self.impl = PahoCommandPublisher(url, client_id, size=size, protocol=protocol,
                                             keepalive_s=keepalive_s, ca_file=ca_file)
        else:
            self.impl = LeanCommandPublisher(url, client_id, size=size, protocol=protocol,
                                             keepalive_s=keepalive_s)
        self.url = url
        self.client_id = client_id

    @property
    def published(self) -> int:
        """Messages written to the broker (paho: handed to paho)."""
        return self.impl.published

    def connected(self) -> bool:
        """Every connection has its CONNACK."""
        return self.impl.connected()

    def start(self) -> None:
        self.impl.start()

    def wait_connected(self, timeout: float) -> bool:
        return self.impl.wait_connected(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued (waiting at most `timeout` for the broker's PUBACKs), then disconnect."""
        self.impl.stop(timeout)

    def pending(self) -> int:
        """Commands not yet acknowledged by the broker."""
        return self.impl.pending()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        """Queue one message; thread-safe, never blocks."""
        self.impl.publish(topic, payload, qos, retain, properties)
