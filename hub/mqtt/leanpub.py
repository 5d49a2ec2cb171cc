"""A lean QoS 1 command publisher for `mqtt://` (MQTT 3.1.1 or 5; issue 12, fan-out).

Through paho each published command cost ~50-75 µs of the hub's CPU (an `MQTTMessageInfo`
with its `Condition`, the message lock, a packet queued and written per message, a
`ReasonCode` and `Properties` per PUBACK) — the largest part of a 10,000-speaker broadcast
after the instrument stopped hiding it (docs/benchmarks.md, fan-out). Here one thread owns
`size` plain sockets:

- `publish()` appends to a queue and wakes the thread once per batch;
- the thread routes each message to its connection by a stable hash of the topic (a device
  always on the same connection, so a speaker sees its commands in the order published),
  encodes it once (topic bytes cached) and writes everything queued with one `send`;
- QoS 1: every PUBLISH stays in the connection's in-flight table (packet id → message) until
  its PUBACK; after a reconnect the unacknowledged ones are sent again first, in their
  order, with DUP set, then the rest; at most the broker's Receive Maximum (MQTT 5 CONNACK)
  in flight per connection, at most 65,000 otherwise (the packet id space);
- clean sessions (nothing to resume: these clients never subscribe), client ids
  `<hub client id>-cmd<n>`, the hub's broker user; keep-alive pings, a broker silent for
  1.5 keep-alive periods is dropped; reconnect with back-off.

`mqtts://` keeps paho (`hub.mqtt.pahopub`); `hub.mqtt.publisher.CommandPublisher` chooses.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

from hub.ingest.mqttrx import COALESCE_S, SMALL_READ, _packet_at, _utf8, _varint, _varint_at
from hub.mqtt.pubthread import PublisherThread
from hub.settings import MqttUrl

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
CONNECT_TIMEOUT_S = 5.0  # TCP connect, then CONNACK
READ_SIZE = 256 * 1024
MAX_INFLIGHT = 65_000  # packet ids are 16 bits: leave some free for the search
_TOPIC_CACHE_MAX = 100_000
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"

# (topic, payload, qos, retain, user properties)
Item = tuple[str, bytes, int, bool, "dict[str, str] | None"]


def connect_packet(client_id: str, *, v5: bool, keepalive_s: int, username: str | None,
                   password: str | None) -> bytes:
    """CONNECT with a clean session (MQTT 5: clean start, session expiry 0)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    var = _utf8("MQTT") + bytes([5 if v5 else 4, flags]) + struct.pack(">H", keepalive_s)
    if v5:
        var += b"\x00"  # no properties: session expiry 0, the broker's defaults
    payload = _utf8(client_id)
    if username is not None:
        payload += _utf8(username)
    if password is not None:
        payload += _utf8(password)
    body = var + payload
    return b"\x10" + _varint(len(body)) + body


def user_properties(props: dict[str, str] | None) -> bytes:
    """MQTT 5 PUBLISH properties: the length, then one User Property (0x26) per pair."""
    if not props:
        return b"\x00"
    body = b"".join(b"\x26" + _utf8(k) + _utf8(v) for k, v in props.items())
    return _varint(len(body)) + body


def publish_packet(topic_bytes: bytes, payload: bytes, qos: int, retain: bool, mid: int, *,
                   v5: bool, props: dict[str, str] | None = None, dup: bool = False) -> bytes:
    """One PUBLISH; `topic_bytes` is the length-prefixed UTF-8 topic (`_utf8(topic)`)."""
    var = topic_bytes + (mid.to_bytes(2, "big") if qos else b"") + (user_properties(props) if v5 else b"")
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (0x08 if dup and qos else 0)
    return bytes((first,)) + _varint(len(var) + len(payload)) + var + payload


_BYTE_PROPS = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_TWO_PROPS = {0x13, 0x21, 0x22, 0x23}
_FOUR_PROPS = {0x02, 0x11, 0x18, 0x27}
_STRING_PROPS = {0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F}  # UTF-8 or binary: same layout


def parse_properties(buf: bytes | bytearray, i: int, end: int) -> tuple[dict[int, int], int]:
    """MQTT 5 properties at `i` → (the integer ones by id, the index after them)."""
    plen, i = _varint_at(buf, i)
    stop = min(i + plen, end)
    out: dict[int, int] = {}
    while i < stop:
        pid = buf[i]
        i += 1
        if pid in _BYTE_PROPS:
            out[pid] = buf[i]
            i += 1
        elif pid in _TWO_PROPS:
            out[pid] = (buf[i] << 8) | buf[i + 1]
            i += 2
        elif pid in _FOUR_PROPS:
            out[pid] = int.from_bytes(buf[i:i + 4], "big")
            i += 4
        elif pid == 0x0B:  # variable byte integer
            out[pid], i = _varint_at(buf, i)
        elif pid in _STRING_PROPS:
            i += 2 + ((buf[i] << 8) | buf[i + 1])
        elif pid == 0x26:  # string pair
            i += 2 + ((buf[i] << 8) | buf[i + 1])
            i += 2 + ((buf[i] << 8) | buf[i + 1])
        else:
            raise ValueError(f"unknown MQTT 5 property {pid:#x}")
    return out, stop


@dataclass(eq=False)
class _Conn:
    """One connection: its socket and the messages routed to it."""

    index: int
    client_id: str
    sock: socket.socket | None = None
    up: bool = False  # CONNACK accepted
    opened_at: float = 0.0
    buf: bytearray = field(default_factory=bytearray)
    out: bytearray = field(default_factory=bytearray)
    backlog: collections.deque[Item] = field(default_factory=collections.deque)  # not sent yet
    inflight: dict[int, Item] = field(default_factory=dict)  # sent, no PUBACK yet (send order)
    resend: collections.deque[int] = field(default_factory=collections.deque)  # in flight, to send again
    window: int = MAX_INFLIGHT
    next_mid: int = 0
    keepalive: int = 30
    last_sent: float = 0.0
    last_heard: float = 0.0
    next_attempt: float = 0.0
    delay: float = RECONNECT_MIN_S


class LeanCommandPublisher(PublisherThread):
    """`size` raw MQTT connections for the hub's commands, one thread. `publish` never blocks."""

    def __init__(self, url: MqttUrl, client_id: str, *, size: int = 2, protocol: int = 5,
                 keepalive_s: int = 30) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        super().__init__()
        if url.tls:
            raise ValueError("the lean publisher speaks plain mqtt:// only")
        self.url = url
        self.client_id = client_id
        self.v5 = protocol == 5
        self.keepalive_s = keepalive_s
        self.conns = [_Conn(i, f"{client_id}-cmd{i}", keepalive=keepalive_s) for i in range(size)]
        self.published = 0  # messages written for the first time (the publisher thread counts)
        self._queue: collections.deque[Item] = collections.deque()
        self._topics: dict[str, bytes] = {}

    # --- the public interface (as hub.mqtt.publisher.CommandPublisher) --------------------
    def connected(self) -> bool:
        """Every connection has its CONNACK."""
        return all(c.up for c in self.conns)

    def pending(self) -> int:
        """Messages not yet acknowledged by the broker (queued, waiting for the window, or in flight)."""
        return len(self._queue) + sum(len(c.backlog) + len(c.inflight) for c in self.conns)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        """Queue one message; the publisher thread sends it. Thread-safe, never blocks."""
        if qos not in (0, 1):
            raise ValueError("the command publisher sends QoS 0 or 1")
        if properties and not self.v5:
            raise ValueError("user properties need MQTT 5")
        self._queue.append((topic, payload, qos, retain, properties))
        if not self._signalled:
            self._wake()

    # --- the publisher thread -------------------------------------------------------------
    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                timeout = 1.0
                for conn in self.conns:
                    if conn.sock is None and now >= conn.next_attempt:
                        self._connect(sel, conn)
                    timeout = min(timeout, self._housekeep(sel, conn, now))
                self._signalled = False  # before draining: a message queued after this wakes us
                if self._queue:
                    self._route()
                for conn in self.conns:
                    if conn.up:
                        self._fill(conn)
                    if conn.out and conn.sock is not None:
                        self._write(sel, conn)
                    self._interest(sel, conn)
                small = False
                for key, events in sel.select(max(0.0, timeout)):
                    conn = key.data
                    if conn is None:
                        self._take_wakeups()
                        continue
                    if events & selectors.EVENT_READ and conn.sock is not None:
                        small = 0 < self._read(sel, conn) < SMALL_READ or small
                    if events & selectors.EVENT_WRITE and conn.sock is not None and conn.out:
                        self._write(sel, conn)
                if small and not self._queue:
                    # a trickle of PUBACKs: take them in fewer, larger reads (as the receiver)
                    time.sleep(COALESCE_S)
        except Exception:
            log.exception("command publisher thread failed")
        finally:
            for conn in self.conns:
                if conn.sock is not None and conn.up:
                    self._disconnect(conn.sock, bytes(conn.out))
                self._drop(sel, conn, quiet=True)
            sel.close()
            for s in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    s.close()

    @staticmethod
    def _disconnect(sock: socket.socket, out: bytes) -> None:
        """What is still to write, DISCONNECT, then read until the broker closes: closing with
        unread bytes would reset the connection, and the broker could lose what it has not read."""
        with contextlib.suppress(OSError):
            sock.settimeout(1.0)
            sock.sendall(out + DISCONNECT)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and sock.recv(READ_SIZE):
                pass

    def _route(self) -> None:
        """Everything queued → its connection's backlog (stable hash of the topic)."""
        queue, conns, n = self._queue, self.conns, len(self.conns)
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                return
            conns[zlib.crc32(item[0].encode()) % n if n > 1 else 0].backlog.append(item)

    def _fill(self, conn: _Conn) -> None:
        """Write what the window allows: first the in-flight messages of a lost connection
        (DUP), then the backlog, in order."""
        inflight, out, v5 = conn.inflight, conn.out, self.v5
        room = conn.window - (len(inflight) - len(conn.resend))
        resend = conn.resend
        while room > 0 and resend:
            mid = resend.popleft()
            topic, payload, qos, retain, props = inflight[mid]
            out += publish_packet(self._topic(topic), payload, qos, retain, mid, v5=v5, props=props, dup=True)
            room -= 1
        backlog = conn.backlog
        if not backlog or room <= 0:
            return
        topics, n = self._topics, 0
        mid = conn.next_mid
        parts: list[bytes] = []
        while room > 0 and backlog:
            item = backlog.popleft()
            topic, payload, qos, retain, props = item
            tb = topics.get(topic)
            if tb is None:
                tb = self._topic(topic)
            if qos:
                mid = mid % 65535 + 1
                while mid in inflight:
                    mid = mid % 65535 + 1
                inflight[mid] = item
                room -= 1
            parts.append(publish_packet(tb, payload, qos, retain, mid, v5=v5, props=props))
            n += 1
        conn.next_mid = mid
        out += b"".join(parts)
        self.published += n

    def _topic(self, topic: str) -> bytes:
        tb = self._topics.get(topic)
        if tb is None:
            if len(self._topics) >= _TOPIC_CACHE_MAX:
                self._topics.clear()
            tb = self._topics[topic] = _utf8(topic)
        return tb

    def _write(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        assert conn.sock is not None
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(sel, conn, f"write failed: {exc}")
            return
        del conn.out[:sent]
        conn.last_sent = time.monotonic()

    def _interest(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        if conn.sock is None:
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        if sel.get_key(conn.sock).events != want:
            sel.modify(conn.sock, want, conn)

    def _housekeep(self, sel: selectors.BaseSelector, conn: _Conn, now: float) -> float:
        """Keep-alive and time-outs; returns how long the loop may sleep for this connection."""
        if conn.sock is None:
            return max(0.0, conn.next_attempt - now)
        if not conn.up:
            if now - conn.opened_at > CONNECT_TIMEOUT_S:
                self._lost(sel, conn, "no CONNACK")
                return 0.0
            return CONNECT_TIMEOUT_S
        ka = conn.keepalive
        if not ka:
            return 1.0
        if now - conn.last_heard > ka * 1.5:
            self._lost(sel, conn, "no answer from the broker within 1.5 keep-alive periods")
            return 0.0
        if now - conn.last_sent >= ka / 2 and not conn.out:
            conn.out += PINGREQ
            return 0.0
        return max(0.0, conn.last_sent + ka / 2 - now)

    def _connect(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        u = self.url
        try:
            sock = socket.create_connection((u.host, u.port), timeout=CONNECT_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
        except OSError as exc:
            if conn.delay == RECONNECT_MIN_S:
                log.warning("command publisher %s: cannot connect to %r (%s); retrying", conn.index, u, exc)
            self._back_off(conn)
            return
        now = time.monotonic()
        conn.sock, conn.up, conn.opened_at = sock, False, now
        conn.last_sent = conn.last_heard = now
        conn.buf.clear()
        conn.out[:] = connect_packet(conn.client_id, v5=self.v5, keepalive_s=self.keepalive_s,
                                     username=u.username, password=u.password)
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _read(self, sel: selectors.BaseSelector, conn: _Conn) -> int:
        """Reads and handles what the broker sent; returns how many bytes (0: none or lost)."""
        assert conn.sock is not None
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._lost(sel, conn, f"read failed: {exc}")
            return 0
        if not data:
            self._lost(sel, conn, "connection closed by the broker")
            return 0
        conn.last_heard = time.monotonic()
        buf = conn.buf
        buf += data
        try:
            self._parse(conn, buf)
        except (ValueError, IndexError) as exc:
            self._lost(sel, conn, f"protocol error: {exc}")
        return len(data)

    def _parse(self, conn: _Conn, buf: bytearray) -> None:
        inflight, v5 = conn.inflight, self.v5
        pos, n = 0, len(buf)
        while pos < n:
            span = _packet_at(buf, pos, n)
            if span is None:
                break
            i, end = span
            kind = buf[pos] >> 4
            if kind == 4:  # PUBACK
                item = inflight.pop((buf[i] << 8) | buf[i + 1], None)
                if v5 and end - i > 2 and buf[i + 2] >= 0x80 and item is not None:
                    log.warning("command publisher: the broker refused a message on %r (reason code %#x)",
                                item[0][:200], buf[i + 2])
            elif kind == 2:  # CONNACK
                self._on_connack(conn, buf, i, end)
            elif kind == 14:  # DISCONNECT (MQTT 5)
                raise ValueError(f"disconnected by the broker (reason code {buf[i] if end > i else 0:#x})")
            # PINGRESP (13): nothing to do
            pos = end
        del buf[:pos]

    def _on_connack(self, conn: _Conn, buf: bytearray, i: int, end: int) -> None:
        code = buf[i + 1]
        if code != 0:
            raise ValueError(f"connection refused by the broker (reason code {code:#x})")
        conn.window, conn.keepalive = MAX_INFLIGHT, self.keepalive_s
        if self.v5 and end > i + 2:
            props, _ = parse_properties(buf, i + 2, end)
            conn.window = min(MAX_INFLIGHT, props.get(0x21, MAX_INFLIGHT))  # Receive Maximum
            conn.keepalive = props.get(0x13, self.keepalive_s)  # Server Keep Alive
        conn.up = True
        conn.delay = RECONNECT_MIN_S
        conn.resend.clear()
        conn.resend.extend(conn.inflight)  # unacknowledged on the lost connection: first, in order
        log.info("command publisher %s connected to %r (%d to send again)", conn.client_id, self.url,
                 len(conn.resend))

    def _lost(self, sel: selectors.BaseSelector, conn: _Conn, why: str) -> None:
        if not self._stopping.is_set():
            log.warning("command publisher %s lost its connection (%s); reconnecting", conn.index, why)
        self._drop(sel, conn)
        self._back_off(conn)

    def _back_off(self, conn: _Conn) -> None:
        conn.next_attempt = time.monotonic() + conn.delay
        conn.delay = min(conn.delay * 2, RECONNECT_MAX_S)

    def _drop(self, sel: selectors.BaseSelector, conn: _Conn, quiet: bool = False) -> None:
        """Close the socket; what is in flight stays in flight (sent again after the CONNACK)."""
        if conn.sock is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                sel.unregister(conn.sock)
            with contextlib.suppress(OSError):
                conn.sock.close()
        conn.sock, conn.up = None, False
        conn.out.clear()
        conn.resend.clear()
