"""Heartbeat load generator for the benchmarks ONLY: pre-encoded MQTT 3.1.1 QoS 1 PUBLISH
packets written to raw sockets, PUBACKs counted.

Neither the hub nor the device simulator uses this module. It speaks just enough MQTT
(CONNECT, PUBLISH QoS 1, PUBACK, DISCONNECT) to push PROTOCOL §3 heartbeats (with `seq` and
`ts`) for 10,000 simulated devices faster than a Python MQTT client can (paho tops out around
20–30k msg/s): every packet is encoded before the clock starts, and a few processes each drive a
few connections with a bounded window of unacknowledged messages.

    python -m bench.mqtt_load --port 1883 --messages 200000        # prints one JSON object

Message `i` belongs to device `i % devices` with `seq = seq_start + i // devices`; a device is
always sent on the same connection, so its heartbeats reach the broker in seq order.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import selectors
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_ROOT = "vhub/v1"
PUBACK_LEN = 4


# --- MQTT 3.1.1 encoding (pure) ------------------------------------------------------------
def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, *, clean_session: bool = True, keepalive: int = 0,
                   username: str | None = None, password: str | None = None) -> bytes:
    flags = (0x02 if clean_session else 0) | (0x80 if username else 0) | (0x40 if password else 0)
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _utf8(client_id)
    if username:
        body += _utf8(username)
    if password:
        body += _utf8(password)
    return b"\x10" + remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int, qos: int = 1) -> bytes:
    body = _utf8(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + remaining_length(len(body)) + body


DISCONNECT = b"\xe0\x00"


def device_id(prefix: str, i: int, digits: int = 5) -> str:
    return f"{prefix}{i:0{digits}d}"


def device_kind(i: int, pattern: str = "alternate") -> str:
    """`alternate`: even cameras, odd speakers; `synthetic`: as hub.registry.sample.synthetic_township
    (60 % cameras), so heartbeats match registered kinds."""
    if pattern == "synthetic":
        return "camera" if i % 5 < 3 else "speaker"
    return "camera" if i % 2 == 0 else "speaker"


def heartbeat_payload(kind: str, seq: int, ts: float) -> bytes:
    """A realistic PROTOCOL §3 heartbeat (about 200 bytes)."""
    if kind == "camera":
        return (f'{{"kind":"camera","seq":{seq},"ts":{ts:.3f},"interval_s":30,"uptime_s":{86400 + seq},'
                f'"rssi_dbm":-67,"fw":"2.4.1","fps":25.0,"bitrate_kbps":2048,"temp_c":41.5,'
                f'"storage_free_pct":73,"recording":true}}').encode()
    return (f'{{"kind":"speaker","seq":{seq},"ts":{ts:.3f},"interval_s":30,"uptime_s":{86400 + seq},'
            f'"rssi_dbm":-71,"fw":"1.9.0","volume":70,"state":"idle","playing":null,"amp_temp_c":38.0,'
            f'"power_w":4.5,"mains":true}}').encode()


# --- the load --------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadSpec:
    port: int
    messages: int
    devices: int = 10_000
    host: str = "127.0.0.1"
    rate: float | None = None  # messages/s over all processes; None = as fast as possible
    processes: int = 2
    connections: int = 4  # per process
    window: int = 2000  # unacknowledged messages per connection
    topic_root: str = DEFAULT_ROOT
    prefix: str = "bench-"
    seq_start: int = 0
    ts_step: float = 0.001  # ts = t_encode + seq_index * ts_step: unique per (device, seq)
    timeout_s: float = 120.0
    id_digits: int = 5  # device ids are prefix + zero-padded index
    kinds: str = "alternate"  # or "synthetic" (see device_kind)
    ts_live: bool = False  # ts = the wall clock at encoding of each round (paced long runs)


@dataclass
class LoadResult:
    sent: int
    acked: int
    started_at: float  # time.time() when the first packet was sent
    elapsed_s: float  # first packet sent → last PUBACK read
    rate: float  # acked / elapsed_s
    error: str | None = None
    cpu_s: float = 0.0  # CPU seconds of the load's processes while they sent (user + system)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Conn:
    def __init__(self, sock: socket.socket, packets: list[bytes]) -> None:
        self.sock = sock
        self.packets = packets
        self.next = 0
        self.acked_bytes = 0
        self.out = memoryview(b"")
        self.writing = False

    @property
    def acked(self) -> int:
        return self.acked_bytes // PUBACK_LEN


def _encode_share(spec: LoadSpec, proc: int, conns: int) -> list[list[bytes]]:
    """Packets for the devices of process `proc`, split over its connections."""
    out: list[list[bytes]] = [[] for _ in range(conns)]
    pids = [0] * conns
    t_enc = time.time()
    root = spec.topic_root
    per_seq = spec.devices
    rounds = -(-spec.messages // per_seq)
    for r in range(rounds):
        seq = spec.seq_start + r
        for d in range(proc, per_seq, spec.processes):
            if r * per_seq + d >= spec.messages:
                break
            c = (d // spec.processes) % conns
            pids[c] = pids[c] % 65535 + 1
            dev = device_id(spec.prefix, d, spec.id_digits)
            ts = t_enc + r * spec.ts_step
            if spec.ts_live and spec.rate:
                ts = t_enc + (r * per_seq + d) / spec.rate  # when it will be sent
            payload = heartbeat_payload(device_kind(d, spec.kinds), seq, ts)
            out[c].append(publish_packet(f"{root}/dev/{dev}/heartbeat", payload, pids[c]))
    return out


def open_connection(host: str, port: int, client_id: str) -> socket.socket:
    """TCP connect, CONNECT (3.1.1, clean session, no keep-alive), wait for a CONNACK accepted."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id))
    ack = b""
    while len(ack) < 4:
        chunk = sock.recv(4 - len(ack))
        if not chunk:
            raise ConnectionError("broker closed the connection before CONNACK")
        ack += chunk
    if ack[0] != 0x20 or ack[3] != 0:
        raise ConnectionError(f"CONNACK refused: {ack!r}")
    return sock


def _open(spec: LoadSpec, client_id: str) -> socket.socket:
    sock = open_connection(spec.host, spec.port, client_id)
    sock.setblocking(False)
    return sock


def _drive(spec: LoadSpec, conns: list[_Conn], rate: float | None, deadline: float) -> tuple[float, float]:
    """Send everything, read every PUBACK. Returns (first send, last ack) in time.time()."""
    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    t0 = time.time()
    m0 = time.monotonic()
    batch = 256
    remaining = sum(len(c.packets) for c in conns)
    per_conn_rate = rate / len(conns) if rate else None
    while remaining > 0:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"{remaining} messages not acknowledged in time")
        for c in conns:
            if c.writing or c.next >= len(c.packets):
                continue
            room = spec.window - (c.next - c.acked)
            if per_conn_rate is not None:
                room = min(room, int(per_conn_rate * (now - m0)) + 1 - c.next)
            n = min(room, batch, len(c.packets) - c.next)
            if n <= 0:
                continue
            c.out = memoryview(b"".join(c.packets[c.next:c.next + n]))
            c.next += n
            c.writing = True
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        for key, ev in sel.select(timeout=0.002):
            c = key.data
            if ev & selectors.EVENT_READ:
                before = c.acked
                try:
                    data = c.sock.recv(1 << 16)
                except BlockingIOError:
                    data = None
                if data == b"":
                    raise ConnectionError("broker closed the connection")
                if data:
                    c.acked_bytes += len(data)
                    remaining -= c.acked - before
            if ev & selectors.EVENT_WRITE and c.writing:
                try:
                    sent = c.sock.send(c.out)
                except BlockingIOError:
                    sent = 0
                c.out = c.out[sent:]
                if not len(c.out):
                    c.writing = False
                    sel.modify(c.sock, selectors.EVENT_READ, c)
    sel.close()
    return t0, time.time()


def _worker(spec: LoadSpec, proc: int, ready: Any, go: Any, results: Any) -> None:
    conns: list[_Conn] = []
    try:
        shares = _encode_share(spec, proc, spec.connections)
        for i, packets in enumerate(shares):
            conns.append(_Conn(_open(spec, f"benchload-{proc}-{i}-{int(time.time() * 1000) % 10**8}"), packets))
        ready.wait()
        go.wait()
        rate = spec.rate / spec.processes if spec.rate else None
        cpu0 = time.process_time()
        t0, t1 = _drive(spec, conns, rate, time.monotonic() + spec.timeout_s)
        results.put({"proc": proc, "sent": sum(c.next for c in conns), "acked": sum(c.acked for c in conns),
                     "t0": t0, "t1": t1, "error": None, "cpu_s": time.process_time() - cpu0})
    except BaseException as exc:  # report, never hang the parent
        with_ready = getattr(ready, "abort", None)
        if with_ready:
            with_ready()
        results.put({"proc": proc, "sent": sum(c.next for c in conns), "acked": sum(c.acked for c in conns),
                     "t0": time.time(), "t1": time.time(), "error": f"{type(exc).__name__}: {exc}"})
    finally:
        for c in conns:
            try:
                c.sock.setblocking(True)
                c.sock.sendall(DISCONNECT)
                c.sock.close()
            except OSError:
                pass


class LoadRun:
    """Encode and connect in `processes` children (`prepare`), then `start()` them together
    and `wait()` for the result. `run_load` does all three."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        ctx = mp.get_context("spawn")
        self._ready = ctx.Barrier(spec.processes + 1)
        self._go = ctx.Event()
        self._results: Any = ctx.Queue()
        self._procs = [ctx.Process(target=_worker, args=(spec, p, self._ready, self._go, self._results),
                                   daemon=True) for p in range(spec.processes)]

    def prepare(self, timeout: float = 120.0) -> None:
        for p in self._procs:
            p.start()
        self._ready.wait(timeout)

    def start(self) -> float:
        self._go.set()
        return time.time()

    def wait(self) -> LoadResult:
        rows = []
        deadline = time.monotonic() + self.spec.timeout_s + 30
        for _ in self._procs:
            rows.append(self._results.get(timeout=max(1.0, deadline - time.monotonic())))
        for p in self._procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        errors = [r["error"] for r in rows if r["error"]]
        t0 = min(r["t0"] for r in rows)
        t1 = max(r["t1"] for r in rows)
        acked = sum(r["acked"] for r in rows)
        elapsed = max(t1 - t0, 1e-6)
        return LoadResult(sum(r["sent"] for r in rows), acked, t0, elapsed, acked / elapsed,
                          "; ".join(errors) or None, sum(r.get("cpu_s", 0.0) for r in rows))


def run_load(spec: LoadSpec) -> LoadResult:
    run = LoadRun(spec)
    run.prepare()
    run.start()
    return run.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=None, help="messages/s; default as fast as possible")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--connections", type=int, default=4, help="per process")
    ap.add_argument("--prefix", default="bench-")
    a = ap.parse_args(argv)
    res = run_load(LoadSpec(port=a.port, host=a.host, messages=a.messages, devices=a.devices, rate=a.rate,
                            processes=a.processes, connections=a.connections, prefix=a.prefix))
    json.dump(res.to_dict(), sys.stdout)
    print()
    return 0 if res.error is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
