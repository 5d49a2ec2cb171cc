"""The hub's MQTT client: connect, Will, persistent session, reconnect, subscribe, publish, ack.

It only speaks MQTT. The paho network thread does nothing but turn each message into an
`InboundMessage` and hand it to a bounded queue; parsing and storing happen in the ingest
workers, which acknowledge a QoS 1 message (`ack`) only once it is durable.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub import metrics
from hub.clock import Clock
from hub.messages import InboundMessage, Rejection
from hub.rejections import REJECTIONS
from hub.settings import MqttUrl
from hub.topics import Topics

log = logging.getLogger(__name__)

QUEUE_PUT_TIMEOUT_S = 5.0  # how long the network thread waits on a full queue for a QoS 1 message
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
_RECEIVED: dict[str, Any] = {}  # channel → its vh_messages_received child (`.labels()` per message is slow)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    url: MqttUrl
    client_id: str
    protocol: int = 5  # 5 or 311
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    ca_file: str | None = None
    receive_maximum: int = 65535


class HubMqttClient:
    """One paho client. `subscriptions` are (topic filter, qos) made again on every connect;
    `unsubscriptions` are filters removed from its persistent session on every connect (a channel
    another connection now receives: its messages would otherwise still be queued here)."""

    def __init__(
        self,
        options: MqttOptions,
        topics: Topics,
        inbox: queue.Queue[InboundMessage] | None,
        subscriptions: Sequence[tuple[str, int]] = (),
        *,
        clock: Clock,
        will: bool = True,
        on_connection_change: Callable[[bool], None] | None = None,
        unsubscriptions: Sequence[str] = (),
    ) -> None:
        self.options = options
        self.topics = topics
        self.inbox = inbox
        self.subscriptions = list(subscriptions)
        self.unsubscriptions = [f for f in unsubscriptions if f not in {s for s, _ in self.subscriptions}]
        self.clock = clock
        self._on_connection_change = on_connection_change
        self._announce_hub = will
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker granted the subscriptions
        self.unsubscribed = threading.Event()  # set once the broker answered the unsubscriptions
        # Cleared at shutdown: new messages are then left unacknowledged, so the broker
        # redelivers them to the next hub session instead of the hub losing them.
        self.accepting: threading.Event | None = None
        self._stopping = False
        v5 = options.protocol == 5
        self._v5 = v5
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if options.url.username:
            self._client.username_pw_set(options.url.username, options.url.password)
        if options.url.tls:
            ctx = ssl.create_default_context(cafile=options.ca_file) if options.ca_file else ssl.create_default_context()
            self._client.tls_set_context(ctx)
        if will:
            self._client.will_set(topics.hub_status, b"offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = lambda *_a: self.unsubscribed.set()

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.options.session_expiry_s
            props.ReceiveMaximum = self.options.receive_maximum
        kwargs: dict[str, Any] = {"keepalive": self.options.keepalive_s}
        if self._v5:
            kwargs["clean_start"] = False
            kwargs["properties"] = props
        self._client.connect_async(self.options.url.host, self.options.url.port, **kwargs)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self) -> None:
        """Say goodbye cleanly (hub status `offline`, retained) and stop the network thread."""
        self._stopping = True
        if self.connected.is_set() and self._announce_hub:
            info = self._client.publish(self.topics.hub_status, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()

    # --- outbound ----------------------------------------------------------------------
    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        properties: dict[str, str] | None = None,
    ) -> paho.MQTTMessageInfo:
        props = None
        if properties and self._v5:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = list(properties.items())
        return self._client.publish(topic, payload, qos=qos, retain=retain, properties=props)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a QoS ≥ 1 message once it is durable (manual ack)."""
        if qos > 0:
            self._client.ack(mid, qos)

    # --- paho callbacks (network thread: must never raise, never block long) -------------
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        session = getattr(flags, "session_present", False)
        log.info("MQTT connected to %r (session present: %s)", self.options.url, session)
        if self.subscriptions:
            if self._v5:
                client.subscribe([(f, SubscribeOptions(qos=q)) for f, q in self.subscriptions])
            else:
                client.subscribe(list(self.subscriptions))
        if self.unsubscriptions:
            client.unsubscribe(list(self.unsubscriptions))
        if self._announce_hub:
            client.publish(self.topics.hub_status, b"online", qos=1, retain=True)
        metrics.mqtt_connected.set(1)
        self.connected.set()
        if self._on_connection_change:
            self._on_connection_change(True)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        refused = [rc for rc in reasons or () if getattr(rc, "is_failure", False)]
        for rc in refused:
            log.error("MQTT subscription refused: %s", rc)
        if not refused:
            self.subscribed.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self.connected.clear()
        metrics.mqtt_connected.set(0)
        if self._on_connection_change:
            self._on_connection_change(False)
        if self._stopping:
            log.info("MQTT disconnected")
        else:
            # Routine in the field: paho reconnects with backoff by itself.
            log.warning("MQTT connection lost (%s); reconnecting", reason)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            self._enqueue(message)
        except Exception:  # the network thread must survive anything
            log.exception("dropping a message on %s after an internal error", message.topic)

    def _enqueue(self, message: paho.MQTTMessage) -> None:
        if self.accepting is not None and not self.accepting.is_set():
            return
        topic = message.topic
        parsed = self.topics.parse(topic)
        if parsed is None or parsed.channel == "cmd":
            REJECTIONS.reject(Rejection("topic", "bad_topic", None, topic[:200]))
            client_ack = message.qos > 0
            if client_ack:
                self._client.ack(message.mid, message.qos)
            return
        channel = parsed.channel
        received = _RECEIVED.get(channel)
        if received is None:
            received = _RECEIVED[channel] = metrics.messages_received.labels(kind=channel)
        received.inc()
        props: dict[str, str] = {}
        if message.properties is not None and hasattr(message.properties, "UserProperty"):
            for k, v in message.properties.UserProperty:
                props[str(k)] = str(v)
        msg = InboundMessage(
            topic=topic,
            device_id=parsed.device_id,
            channel=channel,
            payload=bytes(message.payload),
            qos=message.qos,
            retain=bool(message.retain),
            mid=message.mid,
            received_at=self.clock.now(),
            properties=props,
        )
        assert self.inbox is not None
        try:
            self.inbox.put_nowait(msg)
        except queue.Full:
            if message.qos == 0:
                metrics.messages_dropped.labels(kind=channel).inc()
                return
            # QoS 1: push back on the broker (it holds the rest) rather than lose it.
            try:
                self.inbox.put(msg, timeout=QUEUE_PUT_TIMEOUT_S)
            except queue.Full:
                metrics.messages_dropped.labels(kind=channel).inc()
                log.error("ingest queue full for %.0fs: message from %s not taken (no ack; "
                          "the broker redelivers it after a reconnect)", QUEUE_PUT_TIMEOUT_S, parsed.device_id)
