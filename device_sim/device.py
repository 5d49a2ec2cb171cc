"""A simulated device's MQTT life: session, Will, status, heartbeats, events, faults.

`SimDevice` is the firmware common to cameras and speakers; `SimCamera` and
`SimSpeaker` add their fields and commands. Everything here runs in the
`NetLoop` thread, so a device needs no locks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device_sim import payloads
from device_sim.clock import Clock
from device_sim.netloop import NetLoop, Timer
from device_sim.payloads import DeviceTopics, Kind
from device_sim.township import DeviceSpec

log = logging.getLogger(__name__)
RECONNECT_MIN_S: Final = 1.0
RECONNECT_MAX_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 2.0
CONNACK_TIMEOUT_S: float = 10.0  # tests may lower it
OUTBOX_MAX: Final = 100  # events and acks kept while offline, sent after reconnecting
POWER_LOSS_DROP_AFTER_S: Final = 0.3  # the power_loss event leaves before the socket dies


@dataclass(frozen=True, slots=True)
class Broker:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    shared_password: str | None = None  # from the broker URL, when no per-device password


@dataclass(frozen=True, slots=True)
class DeviceOptions:
    root: str = "vhub/v1"
    mqtt_version: int = 5  # 5, or 4 for MQTT 3.1.1
    keepalive: int = 60
    session_expiry_s: int = 3600
    heartbeat_interval_s: float = 30.0
    heartbeat_qos: int = 1
    snapshot_interval_s: float = 60.0  # 0 = only on command
    snapshot_qos: int = 1
    width: int = 1280
    height: int = 720
    jpeg_quality: int = 80


@dataclass
class Stats:
    """Fleet-wide counters, written by the loop thread only."""

    published: Counter[str] = field(default_factory=Counter)
    bytes_out: int = 0
    connects: int = 0
    disconnects: int = 0
    connect_failures: int = 0
    commands: int = 0
    bad_commands: int = 0
    renders_skipped: int = 0


class SimDevice:
    kind: ClassVar[Kind]

    def __init__(self, spec: DeviceSpec, opts: DeviceOptions, broker: Broker, loop: NetLoop,
                 clock: Clock, stats: Stats, rng: random.Random) -> None:
        self.spec = spec
        self.id = spec.id
        self.opts = opts
        self.broker = broker
        self.loop = loop
        self.clock = clock
        self.stats = stats
        self.rng = rng
        self.topics = DeviceTopics(opts.root, spec.id)
        self.faults: dict[str, dict[str, Any]] = {}
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # its command subscription acknowledged (SUBACK)
        self.want_online = False
        self.seq = 0
        self.boot_mono = clock.monotonic()
        self.powered = True
        self._client: mqtt.Client | None = None
        self._hb_timer: Timer | None = None
        self._retry: Timer | None = None
        self._flap: Timer | None = None
        self._backoff = RECONNECT_MIN_S
        self._power_lost_at: float | None = None
        self._malformed_i = 0
        self.rssi = rng.randint(-85, -55)
        self._outbox: list[tuple[str, bytes, int]] = []
        self._failing = False
        self._connack_timer: Timer | None = None

    # -- clock ------------------------------------------------------------------

    def now(self) -> float:
        """The device's own clock: true time plus any `clock_skew` fault."""
        skew = self.faults.get("clock_skew", {}).get("skew_s", 0.0)
        return self.clock.now() + float(skew)

    # -- connection -------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        v5 = self.opts.mqtt_version == 5
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.id,
                        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                        clean_session=None if v5 else False)
        password = self.spec.password if self.spec.password is not None else self.broker.shared_password
        c.username_pw_set(self.id, password)
        c.will_set(self.topics.status, payloads.OFFLINE, qos=1, retain=True)
        if self.broker.tls:
            c.tls_set()
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.max_queued_messages_set(1000)
        c.connect_timeout = CONNECT_TIMEOUT_S  # the TCP connect blocks the shared loop this long at most
        self.loop.attach(c)
        return c

    def start(self) -> None:
        """Power on and connect (loop thread)."""
        self.want_online = True
        self._connect()

    def _connect(self) -> None:
        self._retry = None
        if not self.want_online or not self.powered:
            return
        first = self._client is None
        if first:
            self._client = self._make_client()
        c = self._client
        assert c is not None
        try:
            if first:
                if self.opts.mqtt_version == 5:
                    props = Properties(PacketTypes.CONNECT)
                    props.SessionExpiryInterval = self.opts.session_expiry_s
                    c.connect(self.broker.host, self.broker.port, self.opts.keepalive,
                              clean_start=False, properties=props)
                else:
                    c.connect(self.broker.host, self.broker.port, self.opts.keepalive)
            else:
                c.reconnect()
            self._connack_timer = self.loop.call_later(CONNACK_TIMEOUT_S, self._connack_check)
        except (OSError, ValueError) as e:
            self.stats.connect_failures += 1
            self._log_failure("device %s: cannot reach the broker (%s); retrying with backoff", e)
            self._schedule_reconnect()

    def _connack_check(self) -> None:
        """No CONNACK in time (a broker that does not speak this MQTT version, or hangs): drop and retry."""
        self._connack_timer = None
        c = self._client
        if self.connected.is_set() or c is None or not self.want_online:
            return
        self.stats.connect_failures += 1
        self._log_failure("device %s: no CONNACK within %ss (does the broker speak this MQTT version?)",
                          CONNACK_TIMEOUT_S)
        sock = c.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            c.loop_read()
        self._schedule_reconnect()

    def _log_failure(self, msg: str, why: object) -> None:
        """The first failure in a row at WARNING, repeats at DEBUG (a fleet must not flood the log)."""
        log.log(logging.DEBUG if self._failing else logging.WARNING, msg, self.id, why)
        self._failing = True

    def _schedule_reconnect(self) -> None:
        if self._retry is None and self.want_online and self.powered:
            delay = self._backoff * self.rng.uniform(0.8, 1.2)
            self._backoff = min(RECONNECT_MAX_S, self._backoff * 2)
            self._retry = self.loop.call_later(delay, self._connect)

    def _on_connect(self, client: mqtt.Client, _ud: Any, flags: Any, rc: ReasonCode,
                    _props: Any) -> None:
        if rc.is_failure:
            self.stats.connect_failures += 1
            self._log_failure("device %s: the broker refused the connection: %s", rc)
            return
        self._failing = False
        if self._connack_timer is not None:
            self._connack_timer.cancel()
            self._connack_timer = None
        self.stats.connects += 1
        self._backoff = RECONNECT_MIN_S
        self.connected.set()
        # Subscribe before saying `online`: the hub may send a pending command as soon as it hears
        # it, and the broker, taking this connection's packets in order, then has the subscription.
        client.subscribe([(self.topics.cmd, 1), (self.topics.hub_status, 1)])
        self.publish(self.topics.status, payloads.ONLINE, qos=1, retain=True)
        pending, self._outbox = self._outbox, []
        for topic, payload, qos in pending:
            self.publish(topic, payload, qos)
        if self._power_lost_at is not None:
            outage = self.clock.now() - self._power_lost_at
            self._power_lost_at = None
            self.event("power_restored", {"outage_s": round(outage, 1)})
        if self._hb_timer is None:
            self._hb_timer = self.loop.call_later(
                self.rng.uniform(0, self.opts.heartbeat_interval_s), self._heartbeat_tick)
        self.on_online()

    def _on_subscribe(self, _c: mqtt.Client, _ud: Any, _mid: int, codes: Any, _props: Any) -> None:
        if codes and not getattr(codes[0], "is_failure", False):  # the first filter: its commands
            self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, rc: ReasonCode,
                       _props: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if was:
            self.stats.disconnects += 1
        if self.want_online and self.powered:
            if was:
                log.info("device %s: connection lost (%s); reconnecting", self.id, rc)
            self._schedule_reconnect()

    def go_offline(self, clean: bool) -> None:
        """Clean: `offline` retained then DISCONNECT. Unclean: drop the socket, the Will fires."""
        self.want_online = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        c = self._client
        if c is None or not self.connected.is_set():
            return
        if clean:
            self.publish(self.topics.status, payloads.OFFLINE, qos=1, retain=True)
            c.disconnect()
        else:
            sock = c.socket()
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):  # no DISCONNECT packet: the broker sends the Will
                    sock.shutdown(socket.SHUT_RDWR)
                c.loop_read()

    def come_online(self) -> None:
        if not self.want_online:
            self.want_online = True
            self._backoff = RECONNECT_MIN_S
            self._connect()

    def stop(self) -> None:
        """Shut down the way firmware does on a planned power-off (clean)."""
        for t in (self._hb_timer, self._retry, self._flap, self._connack_timer):
            if t is not None:
                t.cancel()
        self.go_offline(clean=True)

    # -- publishing -------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> None:
        c = self._client
        if c is None or not self.connected.is_set():
            channel = topic.rsplit("/", 1)[1]
            if channel in ("event", "ack") and len(self._outbox) < OUTBOX_MAX:
                self._outbox.append((topic, payload, qos))  # firmware keeps these for later
            return
        c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        self.stats.published[topic.rsplit("/", 1)[1]] += 1
        self.stats.bytes_out += len(payload)

    def event(self, type_: str, detail: dict[str, Any] | None = None) -> None:
        self.publish(self.topics.event, payloads.event(type_, self.now(), detail), qos=1)

    def ack(self, cmd_id: str, state: str, reason: str | None = None) -> None:
        self.publish(self.topics.ack, payloads.ack(cmd_id, state, self.now(), reason), qos=1)

    # -- heartbeat --------------------------------------------------------------

    def uptime_s(self) -> int:
        return int(self.clock.monotonic() - self.boot_mono)

    def _heartbeat_tick(self) -> None:
        self._hb_timer = self.loop.call_later(self.opts.heartbeat_interval_s, self._heartbeat_tick)
        self.heartbeat()

    def heartbeat(self) -> None:
        if not self.connected.is_set():
            return
        seq = self.seq
        self.seq += 1
        drop = self.faults.get("drop_heartbeats")
        if drop is not None and seq % max(1, int(drop["every"])) == max(1, int(drop["every"])) - 1:
            self.stats.published["heartbeat_dropped"] += 1
            return
        bad = self.faults.get("malformed")
        if bad is not None and seq % max(1, int(bad["every"])) == 0:
            options = payloads.malformed_heartbeats(self.kind, self.now(), seq)
            self._malformed_i += 1
            self.publish(self.topics.heartbeat, options[self._malformed_i % len(options)],
                         qos=self.opts.heartbeat_qos)
            return
        body = payloads.common_heartbeat(
            self.kind, ts=self.now(), seq=seq, interval_s=self.opts.heartbeat_interval_s,
            uptime_s=self.uptime_s(), rssi_dbm=self.rssi + self.rng.randint(-3, 3))
        body.update(self.heartbeat_fields())
        self.publish(self.topics.heartbeat, payloads.dumps(body), qos=self.opts.heartbeat_qos)

    # -- commands ---------------------------------------------------------------

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self.topics.cmd:
            return  # the hub's status: firmware only notes it
        self.stats.commands += 1
        try:
            cmd = json.loads(msg.payload)
        except ValueError:
            cmd = None
        if not isinstance(cmd, dict) or not isinstance(cmd.get("id"), str):
            self.stats.bad_commands += 1
            log.warning("device %s: ignored a command that is not a JSON object with an id", self.id)
            return
        self.handle_command(cmd)

    # -- faults -----------------------------------------------------------------

    def set_fault(self, name: str, on: bool, params: dict[str, Any] | None = None) -> None:
        params = dict(params or {})
        if on:
            self.faults[name] = params
        else:
            self.faults.pop(name, None)
        if name in ("offline_clean", "offline_unclean"):
            if on:
                self.go_offline(clean=name == "offline_clean")
            else:
                self.come_online()
        elif name == "flapping":
            if self._flap is not None:
                self._flap.cancel()
                self._flap = None
            if on:
                self._flap_step(params)
            else:
                self.come_online()
        elif name == "power_loss":
            if on:
                self._power_loss()
            else:
                self._power_restore()
        else:
            self.apply_fault(name, on, params)

    def _flap_step(self, params: dict[str, Any]) -> None:
        if self.want_online:
            self.go_offline(clean=not params.get("unclean", True))
        else:
            self.come_online()
        self._flap = self.loop.call_later(float(params.get("period_s", 20.0)) / 2,
                                          lambda: self._flap_step(params))

    def _power_loss(self) -> None:
        self.event("power_loss", {"mains": False})
        self._power_lost_at = self.clock.now()

        def die() -> None:
            self.powered = False
            self.go_offline(clean=False)
        self.loop.call_later(POWER_LOSS_DROP_AFTER_S, die)

    def _power_restore(self) -> None:
        """Boot again: uptime and seq restart, as on real firmware."""
        self.powered = True
        self.seq = 0
        self.boot_mono = self.clock.monotonic()
        self.come_online()

    # -- for subclasses ---------------------------------------------------------

    def heartbeat_fields(self) -> dict[str, Any]:
        return {}

    def handle_command(self, cmd: dict[str, Any]) -> None:
        self.ack(cmd["id"], "rejected", "unknown action")

    def apply_fault(self, name: str, on: bool, params: dict[str, Any]) -> None:
        """Kind-specific faults."""

    def on_online(self) -> None:
        """Called after each successful connection."""
