"""Fast simulated speakers for `bench.broadcast_fanout`: raw-socket MQTT 3.1.1 responders.

Field speakers are thousands of independent devices; a bench that answers for all of them from
a few paho clients in one Python process spends ~300-500 µs of CPU per command in one GIL
(json.loads, two paho publishes, paho's receive path), so 10,000 speakers take ~3 s of that
process's time whatever the hub does: the instrument bounds the figure. Here:

- `processes` child processes × `connections` raw sockets each (MQTT 3.1.1, clean session, no
  keep-alive), every speaker's `{root}/dev/{id}/cmd` subscribed at QoS 1 on one of them;
- one thread per process, one `select` over its sockets and the parent's pipe; every complete
  packet of a read parsed in one loop (`hub.ingest.mqttrx._packet_at`);
- each PUBLISH answered as firmware would: its PUBACK, then `received` and `done` acks (QoS 1,
  `bench.mqtt_load.publish_packet`) — for a `play` on the speaker's `ack` topic, for anything
  else (the baselines' messages) the first on `bench/{id}/ack`, the second on `bench/{id}/done`
  — all of one read written with one `sendall` per connection;
- the arrival time (CLOCK_MONOTONIC, shared by the processes of the machine) of every PUBLISH
  is kept for the parent, and each process reports its own CPU time (`process_time`), so the
  bench can state what the instrument cost per command.

`RawRoundTrip` is the raw-socket publisher baseline: pre-encoded QoS 1 PUBLISH packets written
with one `sendall`, the speakers' first acks received on a second raw connection — what the
broker and these speakers allow, with no client library's cost in the way.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import re
import selectors
import socket
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from bench.mqtt_load import DISCONNECT, open_connection, publish_packet
from hub.ingest.mqttrx import _packet_at, pubacks, subscribe_packet

READ_SIZE = 256 * 1024
SUBSCRIBE_BATCH = 500  # filters per SUBSCRIBE packet
_ID = re.compile(rb'"id"\s*:\s*"([^"\\]*)"')
_ACTION = re.compile(rb'"action"\s*:\s*"([^"\\]*)"')


def _open(port: int, client_id: str, host: str = "127.0.0.1") -> socket.socket:
    """Connected (CONNACK accepted), blocking."""
    sock = open_connection(host, port, client_id)
    sock.settimeout(None)
    return sock


def _subscribe(sock: socket.socket, filters: Sequence[str]) -> None:
    """SUBSCRIBE every filter at QoS 1, in batches; wait for every SUBACK (all granted)."""
    batches = [filters[i:i + SUBSCRIBE_BATCH] for i in range(0, len(filters), SUBSCRIBE_BATCH)]
    sock.sendall(b"".join(subscribe_packet([(f, 1) for f in b], k + 1, False) for k, b in enumerate(batches)))
    buf, acked = bytearray(), 0
    while acked < len(batches):
        data = sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("broker closed the connection before SUBACK")
        buf += data
        while (span := _packet_at(buf, 0, len(buf))) is not None:
            i, end = span
            if buf[0] >> 4 == 9:
                if any(c >= 0x80 for c in buf[i + 2:end]):
                    raise ConnectionError("subscription refused")
                acked += 1
            del buf[:end]


class _Link:
    """One speaker connection: its socket, unparsed bytes, next packet id, what to write."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.pid = 0
        self.out: list[bytes] = []


def _answer(link: _Link, root: str, arrivals: list[float], now: float) -> None:
    """Every complete packet in `link.buf`: PUBLISH → arrival, PUBACK, `received` and `done`."""
    buf, out = link.buf, link.out
    pos, n = 0, len(buf)
    mids: list[int] = []
    ts = repr(time.time()).encode()
    while pos < n:
        span = _packet_at(buf, pos, n)
        if span is None:
            break
        i, end = span
        header = buf[pos]
        if header >> 4 == 3:  # PUBLISH
            arrivals.append(now)
            tlen = (buf[i] << 8) | buf[i + 1]
            j = i + 2 + tlen
            topic = buf[i + 2:j].decode()
            if header & 0x06:
                mids.append((buf[j] << 8) | buf[j + 1])
                j += 2
            payload = bytes(buf[j:end])
            device = topic.rsplit("/", 2)[-2]
            m = _ID.search(payload)
            a = _ACTION.search(payload)
            cid = m.group(1) if m else b""
            if a is not None and a.group(1) == b"play":
                first = second = f"{root}/dev/{device}/ack"
            else:
                first, second = f"bench/{device}/ack", f"bench/{device}/done"
            for topic_out, state in ((first, b"received"), (second, b"done")):
                link.pid = link.pid % 65535 + 1
                out.append(publish_packet(topic_out, b'{"id":"' + cid + b'","state":"' + state
                                          + b'","ts":' + ts + b"}", link.pid))
        # PUBACKs for our acks, SUBACK, PINGRESP: nothing to do
        pos = end
    del buf[:pos]
    if mids:
        out.insert(0, pubacks(mids))  # before the acks: the broker may then forget the command


def speakers_process(port: int, ids: Sequence[str], connections: int, root: str, name: str,
                     conn: Connection) -> None:
    """One child: `connections` sockets carrying `ids`; serves the parent's requests on `conn`:
    `(want, timeout)` → `(arrivals, cpu_seconds)` once `want` PUBLISHes arrived (or at the
    timeout), `None` → stop."""
    links: list[_Link] = []
    for k in range(connections):
        share = ids[k::connections]
        if not share:
            continue
        sock = _open(port, f"{name}-{k}")
        _subscribe(sock, [f"{root}/dev/{d}/cmd" for d in share])
        links.append(_Link(sock))
    sel = selectors.DefaultSelector()
    for link in links:
        sel.register(link.sock, selectors.EVENT_READ, link)
    sel.register(conn, selectors.EVENT_READ, None)
    arrivals: list[float] = []
    request: tuple[int, float] | None = None  # (want, deadline)
    conn.send("ready")
    try:
        while True:
            timeout = None if request is None else max(0.0, request[1] - time.monotonic())
            for key, _ev in sel.select(timeout):
                link = key.data
                if link is None:
                    msg = conn.recv()
                    if msg is None:
                        return
                    request = (msg[0], time.monotonic() + msg[1])
                    continue
                data = link.sock.recv(READ_SIZE)
                if not data:
                    raise ConnectionError("broker closed a speakers' connection")
                link.buf += data
                _answer(link, root, arrivals, time.monotonic())
                if link.out:
                    link.sock.sendall(b"".join(link.out))
                    link.out.clear()
            if request is not None and (len(arrivals) >= request[0] or time.monotonic() >= request[1]):
                want = request[0]
                conn.send((arrivals[:want], time.process_time()))
                del arrivals[:want]
                request = None
    finally:
        for link in links:
            with contextlib.suppress(OSError):
                link.sock.sendall(DISCONNECT)
                link.sock.close()
        sel.close()


class SpeakerFleet:
    """`processes` × `connections` raw MQTT connections answering for `ids` (see the module)."""

    def __init__(self, port: int, ids: Sequence[str], *, processes: int = 2, connections: int = 4,
                 root: str = "vhub/v1") -> None:
        ctx = mp.get_context("spawn")
        self.shares = [list(ids[p::processes]) for p in range(processes)]
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        self.cpu = [0.0] * processes
        for p, share in enumerate(self.shares):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=speakers_process,
                               args=(port, share, connections, root, f"bench-speakers-{p}", child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def wait_ready(self, timeout: float = 120.0) -> None:
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            if not pipe.poll(timeout) or pipe.recv() != "ready":
                raise TimeoutError(f"a speakers' process did not get ready (alive: {proc.is_alive()})")

    def collect(self, timeout: float = 60.0) -> tuple[list[float], float]:
        """One command per speaker since the last call: (arrival times, CPU seconds the
        speakers' processes used since the last call)."""
        for pipe, share in zip(self.pipes, self.shares, strict=True):
            pipe.send((len(share), timeout))
        arrivals: list[float] = []
        cpu = 0.0
        for p, (pipe, proc) in enumerate(zip(self.pipes, self.procs, strict=True)):
            if not pipe.poll(timeout + 30):  # never wait forever on a dead child
                raise TimeoutError(f"the speakers' process {p} did not answer within {timeout + 30:.0f} s "
                                   f"(alive: {proc.is_alive()})")
            got, total = pipe.recv()
            arrivals += got
            cpu += total - self.cpu[p]
            self.cpu[p] = total
        return arrivals, cpu

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


class RawRoundTrip:
    """The raw-socket publisher baseline: QoS 1 PUBLISHes written with one `sendall` on one
    connection, PUBACKs drained; the speakers' first acks (`bench/+/ack`) received and
    acknowledged on a second connection by one reader thread."""

    def __init__(self, port: int, client_id: str = "bench-raw") -> None:
        self.pub = _open(port, f"{client_id}-pub")
        self.sub = _open(port, f"{client_id}-sub")
        _subscribe(self.sub, ["bench/+/ack"])
        self.acks: list[float] = []
        self.puback_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="raw-baseline", daemon=True)
        self._thread.start()

    def send(self, packets: Sequence[bytes]) -> None:
        self.pub.sendall(b"".join(packets))

    def _read(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.pub, selectors.EVENT_READ, "pub")
        sel.register(self.sub, selectors.EVENT_READ, "sub")
        buf = bytearray()
        while not self._stop.is_set():
            for key, _ev in sel.select(0.2):
                sock = self.pub if key.data == "pub" else self.sub
                try:
                    data = sock.recv(READ_SIZE)
                except OSError:
                    return
                if not data:
                    return
                if key.data == "pub":
                    self.puback_bytes += len(data)  # only PUBACKs come back on this one
                    continue
                buf += data
                now = time.monotonic()
                pos, n, mids = 0, len(buf), []
                while (span := _packet_at(buf, pos, n)) is not None:
                    i, end = span
                    if buf[pos] >> 4 == 3:
                        self.acks.append(now)
                        if buf[pos] & 0x06:
                            j = i + 2 + ((buf[i] << 8) | buf[i + 1])
                            mids.append((buf[j] << 8) | buf[j + 1])
                    pos = end
                del buf[:pos]
                if mids:
                    self.sub.sendall(pubacks(mids))
        sel.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for sock in (self.pub, self.sub):
            with contextlib.suppress(OSError):
                sock.sendall(DISCONNECT)
                sock.close()
