"""The hub's command publisher on paho (PROTOCOL §6): a small pool of paho clients driven by one thread.

Publishing 10,000 `play` commands through the hub's main paho client cost ~200 µs of CPU each
(docs/benchmarks.md, fan-out): paho rescans its whole in-flight window on every PUBACK once
more than `max_inflight_messages` are queued, wakes its network thread through a socketpair on
every publish, and the publishing thread and the network thread fight over paho's message lock
for every message and every PUBACK. Here:

- `publish()` only appends to a queue (a few hundred ns; callers such as the broadcast
  scheduler hold their own lock while they publish) and wakes the publisher thread once per
  batch, not once per message;
- one thread owns every client: it hands each batch to paho (no lock contention: paho's
  locks are then only ever taken by this thread), writes, reads PUBACKs and keeps the
  connections alive with paho's own external-loop API (`loop_read`/`loop_write`/`loop_misc`);
- no client-side in-flight limit (`max_inflight_messages_set(0)`), so a PUBACK costs O(1);
  the broker's TCP window is the flow control;
- each device's commands always use the same client (stable hash of the topic), so a
  speaker sees its commands in the order they were published; the clients have their own
  ids (`<hub client id>-cmd<n>`) under the hub's broker user (the ACL grants the user, not
  the client id).

QoS 1 as before: a command published while the broker is away stays in paho's queue and is
sent (again, with DUP) once the client has reconnected; the broadcast service re-sends
commands whose `received` ack does not come anyway.

`hub.mqtt.publisher.CommandPublisher` uses this on `mqtts://` (TLS through paho) and when asked
for it; on `mqtt://` the lean publisher (`hub.mqtt.leanpub`) costs a fraction of the CPU.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import ssl
import time
import zlib
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.mqtt.pubthread import PublisherThread
from hub.settings import MqttUrl

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
MISC_EVERY_S = 1.0  # keep-alive pings and their timeouts (paho's loop_misc)

_Item = tuple[int, str, bytes, int, bool, dict[str, str] | None]


class _Conn:
    """One paho client on the publisher thread's selector."""

    def __init__(self, index: int, client: paho.Client) -> None:
        self.index = index
        self.client = client
        self.sock: Any = None  # the socket registered with the selector (None: not connected)
        self.next_attempt = 0.0
        self.delay = RECONNECT_MIN_S


class PahoCommandPublisher(PublisherThread):
    """`size` paho clients for the hub's commands, one thread. `publish` never blocks."""

    def __init__(self, url: MqttUrl, client_id: str, *, size: int = 2, protocol: int = 5,
                 keepalive_s: int = 30, ca_file: str | None = None) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        super().__init__()
        self.url = url
        self.client_id = client_id
        self._v5 = protocol == 5
        self._keepalive = keepalive_s
        self._queue: collections.deque[_Item] = collections.deque()
        self.published = 0  # handed to paho (counted on the publisher thread)
        self.conns = [_Conn(i, self._make_client(f"{client_id}-cmd{i}", ca_file)) for i in range(size)]

    def connected(self) -> bool:
        """Every client has its CONNACK."""
        return all(c.client.is_connected() for c in self.conns)

    def _make_client(self, cid: str, ca_file: str | None) -> paho.Client:
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=cid,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self._v5 else True,
        )
        c.max_inflight_messages_set(0)  # O(1) per PUBACK; TCP is the flow control
        c.max_queued_messages_set(0)
        if self.url.username:
            c.username_pw_set(self.url.username, self.url.password)
        if self.url.tls:
            ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
            c.tls_set_context(ctx)
        c.on_connect = lambda _c, _u, _f, reason, _p: self._on_connect(cid, reason)
        kwargs: dict[str, Any] = {"keepalive": self._keepalive}
        if self._v5:  # a clean session: nothing to resume, these clients never subscribe
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0
            kwargs["clean_start"] = True
            kwargs["properties"] = props
        c.connect_async(self.url.host, self.url.port, **kwargs)  # only records the parameters
        return c

    def _on_connect(self, cid: str, reason: Any) -> None:
        if reason.is_failure:
            log.warning("command publisher %s refused by the broker: %s", cid, reason)
        else:
            log.info("command publisher %s connected to %r", cid, self.url)

    # --- lifecycle (start, wait_connected, stop: PublisherThread) ------------------------
    def pending(self) -> int:
        """Commands not yet acknowledged by the broker (queued here or in flight in paho)."""
        return len(self._queue) + sum(len(c.client._out_messages) for c in self.conns)

    # --- publishing ---------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        """Queue one message; the publisher thread sends it. Thread-safe, never blocks."""
        index = zlib.crc32(topic.encode()) % len(self.conns) if len(self.conns) > 1 else 0
        self._queue.append((index, topic, payload, qos, retain, properties))
        if not self._signalled:
            self._wake()

    def _hand_over(self) -> None:
        """Give every queued message to its paho client (publisher thread only)."""
        self._signalled = False  # before draining: a message queued after this wakes us again
        queue, clients, v5 = self._queue, [c.client for c in self.conns], self._v5
        n = 0
        while True:
            try:
                index, topic, payload, qos, retain, properties = queue.popleft()
            except IndexError:
                break
            props = None
            if properties and v5:
                props = Properties(PacketTypes.PUBLISH)
                props.UserProperty = list(properties.items())
            try:
                clients[index].publish(topic, payload, qos=qos, retain=retain, properties=props)
            except (ValueError, TypeError):
                log.exception("cannot publish on %r", topic[:200])
            n += 1
        self.published += n

    # --- the publisher thread -------------------------------------------------------------
    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        next_misc = time.monotonic() + MISC_EVERY_S
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                timeout = next_misc - now
                for conn in self.conns:
                    if conn.sock is None:
                        if now >= conn.next_attempt:
                            self._connect(sel, conn)
                        if conn.sock is None:
                            timeout = min(timeout, conn.next_attempt - now)
                self._sync_write_interest(sel)
                for key, events in sel.select(max(0.0, min(timeout, MISC_EVERY_S))):
                    conn = key.data
                    if conn is None:
                        self._take_wakeups()
                    elif events & selectors.EVENT_READ and conn.sock is not None:
                        self._read(sel, conn)
                self._signalled = False  # before draining: a message queued after this wakes us
                if self._queue:
                    self._hand_over()
                for conn in self.conns:
                    if conn.sock is not None and conn.client.want_write():
                        self._check(sel, conn, conn.client.loop_write())
                if time.monotonic() >= next_misc:
                    next_misc = time.monotonic() + MISC_EVERY_S
                    for conn in self.conns:
                        if conn.sock is not None:
                            self._check(sel, conn, conn.client.loop_misc())
        except Exception:
            log.exception("command publisher thread failed")
        finally:
            for conn in self.conns:
                if conn.sock is not None:
                    with contextlib.suppress(Exception):
                        conn.client.disconnect()
                        conn.client.loop_write()
                self._drop(sel, conn)
            sel.close()

    def _read(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        rc = conn.client.loop_read()
        sock = conn.client.socket()
        # TLS: bytes already decrypted into the SSL buffer do not make the socket readable.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and sock is not None and getattr(sock, "pending", None) \
                and sock.pending() > 0:  # type: ignore[attr-defined]  # ssl.SSLSocket
            rc = conn.client.loop_read()
            sock = conn.client.socket()
        self._check(sel, conn, rc)

    def _sync_write_interest(self, sel: selectors.BaseSelector) -> None:
        for conn in self.conns:
            if conn.sock is None:
                continue
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.client.want_write() else 0)
            if sel.get_key(conn.sock).events != want:
                sel.modify(conn.sock, want, conn)

    def _connect(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            conn.client.reconnect()  # TCP (+ TLS) connect and CONNECT; the CONNACK comes later
        except (OSError, ssl.SSLError, ValueError) as exc:
            conn.next_attempt = time.monotonic() + conn.delay
            if conn.delay == RECONNECT_MIN_S:
                log.warning("command publisher %s: cannot connect to %r (%s); retrying",
                            conn.index, self.url, exc)
            conn.delay = min(conn.delay * 2, RECONNECT_MAX_S)
            return
        conn.sock = conn.client.socket()
        conn.delay = RECONNECT_MIN_S
        sel.register(conn.sock, selectors.EVENT_READ, conn)

    def _check(self, sel: selectors.BaseSelector, conn: _Conn, rc: MQTTErrorCode) -> None:
        """After a paho loop call: a closed socket means the connection is gone (paho has
        already closed it); reconnect after the back-off."""
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and conn.client.socket() is conn.sock:
            return
        if not self._stopping.is_set():
            log.warning("command publisher %s lost its connection (%s); reconnecting",
                        conn.index, rc)
        self._drop(sel, conn)
        conn.next_attempt = time.monotonic() + conn.delay
        conn.delay = min(conn.delay * 2, RECONNECT_MAX_S)

    def _drop(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        if conn.sock is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                sel.unregister(conn.sock)
        conn.sock = None
