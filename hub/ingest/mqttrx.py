"""A receive-only MQTT 3.1.1 / 5 client for the ingest hot path (issue 12).

paho's receive path costs tens of microseconds per message here: three `recv` calls per
packet, a `select` per read, an MQTT 5 `Properties` object, an `MQTTMessage`, callback
dispatch, and for every manual PUBACK a queued packet and a wake-up of its network thread.
The ingest worker processes only *receive* heartbeats, so they use this instead:

- one thread owns the socket (plain or TLS): large reads, every complete packet in the buffer
  parsed in one loop, the messages of one read handed over as one list;
- QoS 1 acknowledgements (`ack_messages()`, after the batch is durable) are written as one
  `send` of many PUBACKs, in the order given: on a plain TCP connection by the calling thread
  itself, under a send lock (no hand-over to the socket thread: that cost a wake-up write, a
  `select` return, a read of the wake-up and a GIL hand-off per batch); on TLS they are queued
  and written by the socket thread, since an SSL socket may not be read and written from two
  threads at once. A failed or timed-out direct write drops the connection (half a packet may
  have gone out); the broker redelivers what was not acknowledged;
- a persistent session (MQTT 5 clean start = 0 with a session expiry; 3.1.1 clean session = 0),
  subscriptions made again on every connect, keep-alive pings, reconnect with backoff;
- acks carry the connection they belong to (`InboundMessage.session`): a message taken on a
  connection that has since dropped is never acknowledged on the next one (its packet id may
  name another message there); the broker redelivers it instead.

It does not publish (no Will, no outgoing QoS flows) and ignores MQTT 5 properties of
incoming PUBLISH packets (heartbeats carry none). Topic aliases are not enabled (CONNECT
asks for none), so every PUBLISH carries its topic.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub import metrics
from hub.messages import InboundMessage, Rejection
from hub.rejections import REJECTIONS
from hub.topics import DeviceTopic, Topics

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
# After a small read the next one waits 1 ms, so that a trickle of small packets (a fan-out's
# acks: ~10 per read) is taken in fewer, larger reads: fewer system calls, GIL hand-offs and
# PUBACK writes per message (the receiver's CPU per speaker, two acks, in a 10,000-speaker fan-out
# went from 33-38 to 21-24 µs). It delays nothing already read; under load reads are large and
# never wait.
SMALL_READ = 8192
COALESCE_S = 0.001
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0
_TOPIC_CACHE_MAX = 200_000
STAMP_STEP_S = 1e-6  # receive times of consecutive messages differ by at least this
STAMP_CATCH_UP_S = 1.0
_SESSIONS = itertools.count(1)  # connection numbers, unique in the process (across receivers)


# Properties are not read here (MQTT 5 ones are skipped): every message shares one empty,
# never-written mapping instead of a new dict each (handlers only read `properties`).
_NO_PROPERTIES: dict[str, str] = {}

class ProtocolError(OSError):
    """The broker sent something this client does not accept (or refused the connection)."""


@dataclass(frozen=True, slots=True)
class RxOptions:
    host: str
    port: int
    client_id: str
    protocol: int = 5  # 5 or 311
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 65535


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _varint_at(buf: bytes | bytearray, i: int) -> tuple[int, int]:
    """The variable byte integer at `i` → (its value, the index after it)."""
    value, shift = 0, 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7


def _utf8(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def connect_packet(o: RxOptions) -> bytes:
    v5 = o.protocol == 5
    flags = (0x80 if o.username is not None else 0) | (0x40 if o.password is not None else 0)
    var = _utf8("MQTT") + bytes([5 if v5 else 4, flags]) + struct.pack(">H", o.keepalive_s)
    if v5:  # Session Expiry Interval, Receive Maximum
        props = b"\x11" + struct.pack(">I", o.session_expiry_s) + b"\x21" + struct.pack(">H", o.receive_maximum)
        var += _varint(len(props)) + props
    payload = _utf8(o.client_id)
    if o.username is not None:
        payload += _utf8(o.username)
    if o.password is not None:
        payload += _utf8(o.password)
    body = var + payload
    return b"\x10" + _varint(len(body)) + body


def subscribe_packet(filters: Sequence[tuple[str, int]], packet_id: int, v5: bool) -> bytes:
    body = struct.pack(">H", packet_id) + (b"\x00" if v5 else b"")
    for f, qos in filters:
        body += _utf8(f) + bytes([qos])
    return b"\x82" + _varint(len(body)) + body


def pubacks(mids: Sequence[int]) -> bytes:
    """PUBACK packets (type 4, remaining length 2, packet id) for `mids`, back to back."""
    return struct.pack(f">{len(mids)}I", *[0x40020000 | m for m in mids])


class MqttReceiver:
    """Subscribes to `filters` and hands every read's messages to `on_messages` (on its own
    thread; it may block, which pushes back on the broker). `ack_messages` acknowledges."""

    def __init__(
        self,
        options: RxOptions,
        topics: Topics,
        filters: Sequence[tuple[str, int]],
        on_messages: Callable[[list[InboundMessage]], None],
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.topics = topics
        self.filters = list(filters)
        self.on_messages = on_messages
        self.now = now
        self.v5 = options.protocol == 5
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.accepting = threading.Event()  # cleared at shutdown: later messages are not taken
        self.accepting.set()
        self.session = next(_SESSIONS)  # a new number on every connection and disconnection
        self._stopping = threading.Event()
        self._out = bytearray()  # written by the socket thread
        self._out_lock = threading.Lock()
        self._send_lock = threading.Lock()  # one writer at a time on the socket
        self._direct: socket.socket | None = None  # the plain connection acks are written to directly
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="mqtt-rx", daemon=True)
        self._topics: dict[str, DeviceTopic | None] = {}
        self._next_stamp = 0.0  # the earliest receive time the next message may have
        self._received: dict[str, object] = {}

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what acks are queued, DISCONNECT (the session stays for the next start), stop."""
        self.accepting.clear()
        self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for s in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                s.close()

    # --- acks ----------------------------------------------------------------------------------
    def ack_messages(self, messages: Sequence[InboundMessage]) -> int:
        """Queue PUBACKs for the QoS 1 messages of the current connection; returns how many."""
        session = self.session
        mids = [m.mid for m in messages if m.qos > 0 and m.session == session]
        if not mids:
            return 0
        data = pubacks(mids)
        with self._out_lock:
            if session != self.session:
                return 0  # the connection dropped meanwhile: the broker redelivers them
            sock = self._direct
            if sock is None:  # TLS (or stopping): the socket thread writes them
                self._out += data
        if sock is None:
            self._wake()
            return len(mids)
        try:
            with self._send_lock:
                sock.sendall(data)
        except OSError as exc:  # closed, reset or timed out: perhaps half a packet went out
            log.debug("MQTT receiver %s: acks not written (%s); dropping the connection",
                      self.options.client_id, exc)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the socket thread reconnects; the broker redelivers
            return 0
        return len(mids)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\x00")

    # --- the socket thread ---------------------------------------------------------------------
    def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while not self._stopping.is_set():
            sock: socket.socket | None = None
            try:
                sock, rest = self._connect()
                delay = RECONNECT_MIN_S
                self._serve(sock, rest)
            except (OSError, ValueError) as exc:
                if not self._stopping.is_set():
                    log.warning("MQTT receiver %s: connection lost (%s); reconnecting in %.0fs",
                                self.options.client_id, exc, delay)
            finally:
                self.connected.clear()
                with self._out_lock:
                    self.session = next(_SESSIONS)  # acks still queued for the old connection are void
                    self._out.clear()
                    self._direct = None
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RECONNECT_MAX_S)

    def _connect(self) -> tuple[socket.socket, bytearray]:
        o = self.options
        raw = socket.create_connection((o.host, o.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket = raw
        if o.tls:
            ctx = ssl.create_default_context(cafile=o.ca_file) if o.ca_file else ssl.create_default_context()
            sock = ctx.wrap_socket(raw, server_hostname=o.host)
        sock.sendall(connect_packet(o))
        buf = bytearray()
        while True:
            packet = _split(buf)
            if packet is not None:
                break
            data = sock.recv(READ_SIZE)
            if not data:
                raise ProtocolError("connection closed before CONNACK")
            buf += data
        header, start, end = packet
        if header >> 4 != 2 or end - start < 2:
            raise ProtocolError(f"expected CONNACK, got packet type {header >> 4}")
        code = buf[start + 1]
        if code != 0:
            raise ProtocolError(f"connection refused by the broker (reason code {code:#x})")
        session_present = bool(buf[start] & 1)
        del buf[:end]
        sock.sendall(subscribe_packet(self.filters, 1, self.v5))
        sock.settimeout(5.0)
        with self._out_lock:
            self.session = next(_SESSIONS)
            self._out.clear()
            self._direct = None if o.tls else sock
        self.connected.set()
        log.info("MQTT receiver %s connected (session present: %s)", o.client_id, session_present)
        return sock, buf

    def _serve(self, sock: socket.socket, buf: bytearray) -> None:
        keepalive = self.options.keepalive_s
        last_sent = last_heard = time.monotonic()
        pending = getattr(sock, "pending", None)
        session = self.session
        while not self._stopping.is_set():
            with self._out_lock:
                out = bytes(self._out)
                self._out.clear()
            if out:
                with self._send_lock:
                    sock.sendall(out)
                last_sent = time.monotonic()
            if buf:
                self._parse(buf, session)
            now = time.monotonic()
            if keepalive and now - last_sent >= keepalive / 2:
                with self._send_lock:
                    sock.sendall(b"\xc0\x00")  # PINGREQ
                last_sent = now
            if keepalive and now - last_heard > keepalive * 1.5:
                raise ProtocolError("no answer from the broker within 1.5 keep-alive periods")
            if pending is not None and pending():
                ready = [sock]
            else:
                ready, _, _ = select.select([sock, self._wake_r], [], [], 1.0)
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
            if sock in ready:
                try:
                    data = sock.recv(READ_SIZE)
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
                if not data:
                    raise ProtocolError("connection closed by the broker")
                buf += data
                last_heard = time.monotonic()
                if len(data) < SMALL_READ:
                    time.sleep(COALESCE_S)
        # stopping: the acks queued so far, then DISCONNECT; then read until the broker closes,
        # since closing with unread bytes would reset the connection and the broker could lose
        # the acks still in its receive buffer.
        with self._out_lock:
            out = bytes(self._out) + b"\xe0\x00"
            self._out.clear()
            self._direct = None  # acks from now on are queued (and void: the session changes)
        with contextlib.suppress(OSError, ValueError):
            with self._send_lock:  # after a direct write still in progress, never inside one
                sock.sendall(out)
            sock.settimeout(0.2)
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and sock.recv(READ_SIZE):
                pass

    def _parse(self, buf: bytearray, session: int) -> None:
        """Every complete packet in `buf` (consumed); PUBLISH → one list to `on_messages`."""
        messages: list[InboundMessage] = []
        bad_acks: list[int] = []
        # One clock read per network read, but never one time for two messages: a heartbeat
        # without `ts` is stored at its receive time, and two points of one device at the same
        # time are one point in InfluxDB (the later overwrites the earlier). So each message of
        # the read is 1 µs (the stored precision) after the one before, and after the last one
        # of the previous read (a burst can run ahead of the clock by 1 µs per message; the
        # clock catches up as soon as the burst ends). A clock stepped back by more than
        # STAMP_CATCH_UP_S is followed, not outrun.
        now = self.now()
        if now < self._next_stamp < now + STAMP_CATCH_UP_S:
            now = self._next_stamp
        v5 = self.v5
        accepting = self.accepting.is_set()
        pos, n = 0, len(buf)
        while pos < n:
            span = _packet_at(buf, pos, n)
            if span is None:
                break  # incomplete: wait for more bytes
            i, end = span
            header = buf[pos]
            kind = header >> 4
            if kind == 3:  # PUBLISH
                qos = (header >> 1) & 3
                tlen = (buf[i] << 8) | buf[i + 1]
                j = i + 2 + tlen
                topic = buf[i + 2 : j].decode("utf-8", "replace")
                mid = 0
                if qos:
                    mid = (buf[j] << 8) | buf[j + 1]
                    j += 2
                if v5:  # properties: skip them (`_varint_at` inlined: once per message)
                    plen, shift = 0, 0
                    while True:
                        b = buf[j]
                        plen |= (b & 0x7F) << shift
                        j += 1
                        if b < 0x80:
                            break
                        shift += 7
                    j += plen
                if accepting:
                    dt = self._topics.get(topic, False)
                    if dt is False:
                        dt = self.topics.parse(topic)
                        if len(self._topics) >= _TOPIC_CACHE_MAX:
                            self._topics.clear()
                        self._topics[topic] = dt
                    if dt is None or dt.channel == "cmd":  # type: ignore[union-attr]
                        REJECTIONS.reject(Rejection("topic", "bad_topic", None, topic[:200]))
                        if qos:
                            bad_acks.append(mid)
                    else:
                        messages.append(InboundMessage(topic, dt.device_id, dt.channel,  # type: ignore[union-attr]
                                                       bytes(buf[j:end]), qos, bool(header & 1), mid,
                                                       now + len(messages) * STAMP_STEP_S, _NO_PROPERTIES, session))
            elif kind == 9:  # SUBACK
                codes = self._suback_codes(buf, i, end) if v5 else bytes(buf[i + 2 : end])
                refused = [c for c in codes if c >= 0x80]
                if refused:
                    log.error("MQTT receiver: subscription refused (reason codes %s)", refused)
                else:
                    self.subscribed.set()
            elif kind == 14:  # DISCONNECT from the broker (MQTT 5)
                reason = buf[i] if end > i else 0
                raise ProtocolError(f"disconnected by the broker (reason code {reason:#x})")
            # PINGRESP (13) and anything else: nothing to do
            pos = end
        del buf[:pos]
        self._next_stamp = now + len(messages) * STAMP_STEP_S
        if bad_acks:
            with self._out_lock:
                self._out += pubacks(bad_acks)
        if messages:
            counts: dict[str, int] = {}
            for m in messages:
                counts[m.channel] = counts.get(m.channel, 0) + 1
            for channel, count in counts.items():
                child = self._received.get(channel)
                if child is None:
                    child = self._received[channel] = metrics.messages_received.labels(kind=channel)
                child.inc(count)  # type: ignore[attr-defined]
            self.on_messages(messages)

    @staticmethod
    def _suback_codes(buf: bytearray, i: int, end: int) -> bytes:
        plen, j = _varint_at(buf, i + 2)
        return bytes(buf[j + plen : end])


def _packet_at(buf: bytearray, pos: int, n: int) -> tuple[int, int] | None:
    """(start of the variable header, end) of the packet at `pos`, or None when incomplete."""
    i, length, shift = pos + 1, 0, 0
    while True:
        if i >= n:
            return None
        b = buf[i]
        length |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            break
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed remaining length")
    end = i + length
    return (i, end) if end <= n else None


def _split(buf: bytearray) -> tuple[int, int, int] | None:
    """(header byte, start, end) of the first complete packet in `buf`, or None."""
    span = _packet_at(buf, 0, len(buf))
    return None if span is None else (buf[0], span[0], span[1])
