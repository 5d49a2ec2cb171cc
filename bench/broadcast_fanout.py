"""Benchmark: broadcast API call → every target speaker's `received` ack processed by the hub.

    python -m bench.broadcast_fanout --speakers 1000 10000 --rounds 3

For each fleet size, in one run:
  * a private Mosquitto on a free loopback port (the bench broker of `bench.common`: no queue or
    in-flight limits, the same for every client);
  * the speakers (`--instrument raw`, default): `bench.fanout_speakers.SpeakerFleet`, raw-socket
    MQTT 3.1.1 responders in 2 processes × 4 connections, one QoS 1 subscription per speaker on
    its own `vhub/v1/dev/{id}/cmd` topic; each PUBLISH is answered with its PUBACK, then the
    `received` and `done` acks as firmware would (so the next round finds idle speakers), a
    read's answers in one write. Their CPU per command is reported (the instrument's cost).
    `--instrument paho` is the former one: 8 paho clients in one child process, which spend
    ~300-500 µs of CPU per command in one GIL and so bounded every figure near 3-4 s at 10k;
  * the hub side, in this process: BroadcastService + the hub's command publisher
    (`hub.mqtt.publisher.CommandPublisher`, as `villagehub serve` wires it: lean on mqtt://;
    `--publisher pool-paho` the same pool on paho as before; `--publisher link` publishes
    through the one paho client that also receives the acks, as the hub did before that)
    + a minimal MQTT edge for acks/presence (`BroadcastLink`) + the FastAPI broadcast router
    under uvicorn, on the system clock, scheduler thread running; quiet hours off;
  * baselines: a plain paho client publishing the same number of QoS 1 messages of the same
    size to the same topics; the speakers answer each with the same two acks, the first on a
    topic the plain client subscribes to. Its figure is send start → that ack's arrival at the
    plain client: the same round trip without the hub's work. And the same with raw sockets
    (`bench.fanout_speakers.RawRoundTrip`: pre-encoded PUBLISHes in one write, acks read on a
    second connection): what the broker and the speakers allow (`--no-raw-baseline` skips it);
  * one warm-up round of each, then the baselines and the hub rounds alternate (same machine load).

Latency of one speaker = when the hub has processed its `received` ack (the service's `on_ack`
returned: the delivery is `received` in memory, persisted within `flush_interval_s`) − when the
POST was sent (CLOCK_MONOTONIC). Also reported: the `play`'s arrival at the speaker, and the CPU
time of this process (hub + plain client; each measured over its own rounds, from the start of a
round until every delivery is `done`) per speaker. Prints one JSON object; `figures` carries the
targets (10k p99 ≤ 2 s, 1k p99 ≤ 250 ms) for `python -m bench report`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import uvicorn
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from bench.broadcast_link import BroadcastLink
from bench.common import BROKER_CONFIG, thread_cpu_s, threads_us_per_msg
from bench.fanout_speakers import RawRoundTrip, SpeakerFleet
from bench.mqtt_load import publish_packet
from bench.report import _fig
from hub import gcpolicy, threadnames
from hub.api import deps
from hub.api.routes.broadcasts import router as broadcasts_router
from hub.broadcasts import (
    BroadcastConfig,
    BroadcastService,
    Principal,
    SpeakerRef,
)
from hub.clock import SystemClock
from hub.quiethours import QuietHours
from tests.servers import MosquittoServer, free_port

ROOT = "vhub/v1"
TARGET_P99_MS = {1000: 250.0, 10000: 2000.0}


# --- the speakers' side (child process) -------------------------------------------------

def speakers_process(port: int, ids: list[str], clients: int, conn: Connection) -> None:
    arrivals: list[float] = []
    lock = threading.Lock()
    subscribed = threading.Semaphore(0)
    shares = [ids[i::clients] for i in range(clients)]
    pool: list[mqtt.Client] = []

    def on_message(c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        t = time.monotonic()
        with lock:
            arrivals.append(t)
        # Every message is acked the same way (baseline too), so both runs load the
        # speakers' side equally: `received`, then `done` (the play ends at once).
        cmd = json.loads(msg.payload)
        device = msg.topic.split("/")[-2]
        if cmd["action"] == "play":
            first = second = f"{ROOT}/dev/{device}/ack"
        else:  # baseline: the first ack to the plain client, the second to no one
            first, second = f"bench/{device}/ack", f"bench/{device}/done"
        c.publish(first, json.dumps({"id": cmd["id"], "state": "received", "ts": time.time()}), qos=1)
        c.publish(second, json.dumps({"id": cmd["id"], "state": "done", "ts": time.time()}), qos=1)

    for n, share in enumerate(shares):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-speakers-{n}",
                        protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(0)  # paho rescans its in-flight window on every PUBACK
        c.on_message = on_message
        c.on_subscribe = lambda *_a: subscribed.release()
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        batches = [share[i:i + 200] for i in range(0, len(share), 200)]
        for b in batches:
            c.subscribe([(f"{ROOT}/dev/{d}/cmd", 1) for d in b])
        for _ in batches:
            subscribed.acquire(timeout=30)
        pool.append(c)
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        want, timeout = msg
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with lock:
                if len(arrivals) >= want:
                    break
            time.sleep(0.002)
        with lock:
            got, arrivals[:] = arrivals[:want], arrivals[want:]
        conn.send((got, time.process_time()))
    for c in pool:
        c.disconnect()
        c.loop_stop()


# --- measuring -----------------------------------------------------------------------------

def stats(latencies: list[float], expected: int) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)
    if not ms:
        return {"received": 0, "expected": expected}
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return {"received": len(ms), "expected": expected, "p50_ms": round(q[49], 1),
            "p99_ms": round(q[98], 1), "max_ms": round(ms[-1], 1)}


def admin() -> Principal:
    return Principal(name="bench", role="admin")


def serve(app: FastAPI) -> tuple[uvicorn.Server, int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, port


class AckTap:
    """Between the MQTT edge and the service: the time each `received` ack has been processed."""

    def __init__(self, service: BroadcastService) -> None:
        self.service = service
        self.received: list[float] = []  # appended by the link's one worker thread
        # set when `received` reaches `target`: the bench waits on it instead of polling, so
        # its main thread takes no GIL turns from the hub's threads during a round
        self.target = 0
        self.reached = threading.Event()

    def expect(self, count: int) -> None:
        self.reached.clear()
        self.target = count
        if len(self.received) >= count:
            self.reached.set()

    def on_presence(self, device_id: str, online: bool, ts: float) -> None:
        self.service.on_presence(device_id, online, ts)

    def on_ack(self, device_id: str, payload: bytes, received_at: float) -> bool:
        ok = self.service.on_ack(device_id, payload, received_at)
        if ok and b'"received"' in payload:
            self.received.append(time.monotonic())
            if len(self.received) >= self.target:
                self.reached.set()
        return ok


def wait_until(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _all_published(pending: list[mqtt.MQTTMessageInfo]) -> bool:
    """True once every publish is acknowledged. `pending` is in reverse order of publishing;
    acknowledged ones are popped from its end, so each poll costs only what arrived since."""
    while pending and pending[-1].is_published():
        pending.pop()
    return not pending


class PahoSpeakers:
    """The former instrument (`--instrument paho`): `clients` paho clients in one child process."""

    def __init__(self, port: int, ids: list[str], clients: int) -> None:
        self.n = len(ids)
        self.pipe, child = mp.Pipe()
        self.proc = mp.get_context("spawn").Process(target=speakers_process,
                                                    args=(port, ids, clients, child), daemon=True)
        self.proc.start()
        self.cpu = 0.0

    def wait_ready(self, timeout: float = 120.0) -> None:
        if not self.pipe.poll(timeout) or self.pipe.recv() != "ready":
            raise TimeoutError(f"the speakers' process did not get ready (alive: {self.proc.is_alive()})")

    def collect(self, timeout: float = 60.0) -> tuple[list[float], float]:
        self.pipe.send((self.n, timeout))
        # the speakers answer within `timeout`; never wait forever on a dead child
        if not self.pipe.poll(timeout + 30):
            raise TimeoutError(f"the speakers' process did not answer within {timeout + 30:.0f} s "
                               f"(alive: {self.proc.is_alive()})")
        got, total = self.pipe.recv()
        cpu, self.cpu = total - self.cpu, total
        return got, cpu

    def stop(self) -> None:
        self.pipe.send(None)
        self.proc.join(10)


@dataclass(frozen=True)
class Options:
    rounds: int = 3
    instrument: str = "raw"  # raw (bench.fanout_speakers) or paho (speakers_process)
    clients: int = 8  # paho instrument: clients in its one process
    speaker_processes: int = 2  # raw instrument
    speaker_connections: int = 4  # raw instrument, per process
    publisher: str = "pool"  # the hub's CommandPublisher, `pool-paho` (on paho), `link` (the ack link's client)
    pool_size: int = 2
    link_receiver: str = "lean"
    raw_baseline: bool = True


def run_size(n: int, opts: Options) -> dict[str, Any]:
    ids = [f"spk{i:05d}" for i in range(n)]
    fleet = [SpeakerRef(d, f"v{i // 100:03d}", f"g{i // 20:04d}") for i, d in enumerate(ids)]
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoServer(Path(tmp) / "mosquitto", BROKER_CONFIG).start()
        try:
            return _run_size(n, opts, ids, fleet, broker, Path(tmp))
        finally:
            broker.stop()


def _run_size(n: int, opts: Options, ids: list[str], fleet: list[SpeakerRef], broker: MosquittoServer,
              tmp: Path) -> dict[str, Any]:
    port = broker.port
    url = broker.url
    publisher, pool_size, link_receiver = opts.publisher, opts.pool_size, opts.link_receiver
    speakers: PahoSpeakers | SpeakerFleet
    if opts.instrument == "paho":
        speakers = PahoSpeakers(port, ids, opts.clients)
    else:
        speakers = SpeakerFleet(port, ids, processes=opts.speaker_processes,
                                connections=opts.speaker_connections, root=ROOT)
    speakers.wait_ready()
    collect = speakers.collect

    # The hub: service + command publisher + MQTT edge for acks + HTTP API.
    clock = SystemClock()
    link = BroadcastLink(url, clock, root=ROOT, client_id="bench-hub", receiver=link_receiver)
    pub: Any = None
    publish = link.publish
    if publisher in ("pool", "pool-paho"):
        from hub.mqtt.publisher import CommandPublisher
        from hub.settings import MqttUrl

        pub = CommandPublisher(MqttUrl(url), "bench-hub", size=pool_size,
                               impl="paho" if publisher == "pool-paho" else "auto")
        pub.start()
        pub.wait_connected(10)
        publish = pub.publish
    svc = BroadcastService(tmp / "broadcasts.db", clock, lambda: fleet, lambda _d: True,
                           publish, config=BroadcastConfig(ack_timeout_s=3600, tick_s=1.0,
                                                           quiet_hours=QuietHours.parse("00:00", "00:00")))
    tap = AckTap(svc)
    link.attach(tap)
    link.start()
    svc.start()
    app = FastAPI()
    app.include_router(broadcasts_router)
    app.dependency_overrides.update({
        deps.get_broadcasts: lambda: svc, deps.get_media_url_allow: lambda: (),
        deps.require_viewer: admin, deps.require_operator: admin, deps.require_admin: admin})
    server, http_port = serve(app)
    gcpolicy.settle()  # as `villagehub serve` does once it serves
    # Baseline: a plain paho client publishing n QoS 1 messages of the play's size, and
    # receiving the speakers' first ack of each.
    plain_acks: list[float] = []
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-plain", protocol=mqtt.MQTTv5)
    plain.max_inflight_messages_set(0)
    plain.on_message = lambda _c, _u, _m: plain_acks.append(time.monotonic())
    plain_ready = threading.Event()
    plain.on_subscribe = lambda *_a: plain_ready.set()
    plain.connect("127.0.0.1", port)
    plain.loop_start()
    plain.subscribe("bench/+/ack", 1)
    assert plain_ready.wait(10)
    body = json.dumps({"id": "0" * 32, "action": "stop", "ts": time.time(),
                       "expires_at": time.time() + 1800, "broadcast_id": "0" * 16, "priority": 3,
                       "volume": 70, "repeat": 1, "media": {"type": "tts", "text": "天干物燥，小心火烛。",
                                                            "lang": "zh"}}).encode()

    raw = RawRoundTrip(port) if opts.raw_baseline else None
    raw_packets = [publish_packet(f"{ROOT}/dev/{d}/cmd", body, i % 65535 + 1) for i, d in enumerate(ids)]

    def plain_round() -> dict[str, Any]:
        plain_acks.clear()
        t0, c0 = time.monotonic(), time.process_time()
        sent = [plain.publish(f"{ROOT}/dev/{d}/cmd", body, qos=1) for d in ids][::-1]
        ok = wait_until(lambda: len(plain_acks) >= n, 120)
        # and its PUBACKs, which paho may still be working through: that is this round's cost,
        # not the next hub round's (the same process, the same GIL)
        ok = wait_until(lambda: _all_published(sent), 120) and ok
        cpu = time.process_time() - c0
        if raw is not None:  # its reader sees these acks too: done with them before its own round
            wait_until(lambda: len(raw.acks) >= n, 120)
        arrivals, spk_cpu = collect()
        return {"acked": [t - t0 for t in plain_acks[:n]], "arrived": [t - t0 for t in arrivals],
                "cpu": cpu, "speakers_cpu": spk_cpu, "complete": ok}

    def raw_round() -> dict[str, Any]:
        assert raw is not None
        raw.acks.clear()
        plain_acks.clear()  # the plain client sees this round's acks too (below)
        t0 = time.monotonic()
        raw.send(raw_packets)
        ok = wait_until(lambda: len(raw.acks) >= n, 120)
        # The plain client is subscribed to the same `bench/+/ack`: let it take these n acks now,
        # not while the next hub round runs in this process (paho's ~50 µs per message, holding
        # the GIL, was counted as the hub's CPU and delayed its acks: ~0.8 s of p99 at 10,000).
        wait_until(lambda: len(plain_acks) >= n, 120)
        plain_acks.clear()
        arrivals, spk_cpu = collect()
        return {"acked": [t - t0 for t in raw.acks[:n]], "arrived": [t - t0 for t in arrivals],
                "speakers_cpu": spk_cpu, "complete": ok}

    def hub_round(http: httpx.Client, r: int) -> dict[str, Any]:
        start = len(tap.received)
        tap.expect(start + n)
        t0, c0, threads0 = time.monotonic(), time.process_time(), thread_cpu_s(os.getpid(), descendants=False)
        resp = http.post("/api/v1/broadcasts", json={
            "title": f"bench {r}", "media": {"type": "tts", "text": "天干物燥，小心火烛。"},
            "targets": {"all": True}, "priority": 3})
        answered = time.monotonic() - t0
        resp.raise_for_status()
        ok = tap.reached.wait(120)
        got = [t - t0 for t in tap.received[start:start + n]]
        done = wait_until(lambda: not svc.dispatch.open, 120)
        all_done = time.monotonic() - t0
        cpu = time.process_time() - c0
        threads = thread_cpu_s(os.getpid(), descendants=False)
        for name, seconds in threads.items():  # this process's threads (the hub's are named)
            hub_threads[name] = hub_threads.get(name, 0.0) + seconds - threads0.get(name, 0.0)
        arrivals, spk_cpu = collect()
        return {"acked": got, "arrived": [t - t0 for t in arrivals], "api_s": answered,
                "done_s": all_done, "cpu": cpu, "speakers_cpu": spk_cpu, "complete": ok and done}

    hub_threads: dict[str, float] = {}  # CPU seconds per thread over the counted hub rounds
    keys = ("acked", "arrived", "cpu", "speakers_cpu", "api_s", "done_s")
    runs: dict[str, dict[str, list[float]]] = {k: {x: [] for x in keys} for k in ("plain", "raw", "hub")}
    per_round: list[dict[str, float]] = []
    complete = True

    def add(kind: str, res: dict[str, Any]) -> None:
        for k in ("acked", "arrived"):
            runs[kind][k] += res[k]
        for k in ("cpu", "speakers_cpu", "api_s", "done_s"):
            if k in res:
                runs[kind][k].append(res[k])

    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http:
        plain_round()  # warm-up (not counted): connections, caches, first SQLite pages
        if raw is not None:
            raw_round()
        hub_round(http, -1)
        hub_threads.clear()
        for r in range(opts.rounds):  # alternate, so all see the same machine load
            b = plain_round()
            w = raw_round() if raw is not None else None
            h = hub_round(http, r)
            complete = complete and b["complete"] and h["complete"] and (w is None or w["complete"])
            add("plain", b)
            add("hub", h)
            row = {"plain_max_ms": round(max(b["acked"], default=0) * 1000, 1),
                   "hub_max_ms": round(max(h["acked"], default=0) * 1000, 1),
                   "hub_cpu_s": round(h["cpu"], 3), "plain_cpu_s": round(b["cpu"], 3),
                   "speakers_cpu_s_hub_round": round(h["speakers_cpu"], 3)}
            if w is not None:
                add("raw", w)
                complete = complete and w["complete"]
                row["raw_max_ms"] = round(max(w["acked"], default=0) * 1000, 1)
            per_round.append(row)
    plain.disconnect()
    plain.loop_stop()
    if raw is not None:
        raw.close()
    server.should_exit = True
    svc.stop()
    link.stop()
    if pub is not None:
        pub.stop()
    speakers.stop()

    def per(values: list[float]) -> float | None:
        return round(statistics.median(values) / n * 1e6, 1) if values else None

    hub, base = runs["hub"], runs["plain"]
    out: dict[str, Any] = {
        "speakers": n, "rounds": opts.rounds,
        "instrument": (f"raw MQTT, {opts.speaker_processes} processes × {opts.speaker_connections} connections"
                       if opts.instrument == "raw" else f"paho, {opts.clients} clients in one process"),
        "publisher": publisher if publisher == "link" else f"{publisher} of {pool_size}",
        "ack_receiver": link_receiver,
        "complete": complete,
        "hub_api_to_received_ack": stats(hub["acked"], n * opts.rounds),
        "hub_api_to_play_arrival": stats(hub["arrived"], n * opts.rounds),
        "plain_paho_round_trip": stats(base["acked"], n * opts.rounds),
        "plain_paho_publish_to_arrival": stats(base["arrived"], n * opts.rounds),
        "hub_cpu_us_per_speaker_median": per(hub["cpu"]),
        # the bench process's threads in the hub rounds (the hub's by name; "hub:main" is the
        # bench's own loop), µs per speaker averaged over the rounds
        "hub_threads_us_per_speaker": {k: round(v / opts.rounds, 1) for k, v in
                                       threads_us_per_msg({}, hub_threads, n).items()},
        "plain_cpu_us_per_message_median": per(base["cpu"]),
        # the instrument's own cost: CPU of the speakers' processes per command answered
        "speakers_cpu_us_per_command_hub_rounds": per(hub["speakers_cpu"]),
        "speakers_cpu_us_per_command_plain_rounds": per(base["speakers_cpu"]),
        "api_response_ms_median": round(statistics.median(hub["api_s"]) * 1000, 1),
        "all_done_s_median": round(statistics.median(hub["done_s"]), 3),
        "per_round": per_round,
    }
    if raw is not None:
        out["raw_socket_round_trip"] = stats(runs["raw"]["acked"], n * opts.rounds)
        out["raw_socket_publish_to_arrival"] = stats(runs["raw"]["arrived"], n * opts.rounds)
        out["speakers_cpu_us_per_command_raw_rounds"] = per(runs["raw"]["speakers_cpu"])
    return out


def figures(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        n = r["speakers"]
        hub, base = r["hub_api_to_received_ack"], r["plain_paho_round_trip"]
        target = TARGET_P99_MS.get(n)
        p99 = hub.get("p99_ms")
        out.append(_fig(f"broadcast API → `received` ack processed, {n} speakers, p99", p99, "ms",
                        "plain paho publish → first ack back, p99", base.get("p99_ms"),
                        target=f"<= {target:,.0f} ms" if target else None,
                        met=(p99 is not None and p99 <= target) if target else None,
                        higher_is_better=False))
        if "raw_socket_round_trip" in r:
            out.append(_fig(f"broadcast API → `received` ack processed, {n} speakers, p99 vs raw sockets", p99,
                            "ms", "raw-socket publish → first ack back, p99 (broker + speakers)",
                            r["raw_socket_round_trip"].get("p99_ms"), higher_is_better=False))
        out.append(_fig(f"hub CPU per speaker ({n}: play, received, done)",
                        r["hub_cpu_us_per_speaker_median"], "µs",
                        "plain paho CPU per message (publish, ack back)",
                        r["plain_cpu_us_per_message_median"], higher_is_better=False))
        out.append(_fig(f"simulated speakers' CPU per command ({n}, the instrument)",
                        r["speakers_cpu_us_per_command_hub_rounds"], "µs", higher_is_better=False))
        out.append(_fig(f"`received` acks processed at {n} speakers", hub.get("received"), "count",
                        "expected", hub.get("expected"), met=hub.get("received") == hub.get("expected")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speakers", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instrument", choices=("raw", "paho"), default="raw",
                    help="simulated speakers: raw-socket responders in several processes (raw) or "
                         "paho clients in one process (paho, the former instrument)")
    ap.add_argument("--speaker-processes", type=int, default=2, help="raw instrument: processes")
    ap.add_argument("--speaker-connections", type=int, default=4, help="raw instrument: connections per process")
    ap.add_argument("--clients", type=int, default=8, help="paho instrument: paho clients carrying the speakers")
    ap.add_argument("--publisher", choices=("pool", "pool-paho", "link"), default="pool",
                    help="the hub's command publisher as `villagehub serve` wires it (pool: lean on mqtt://), "
                         "the same on paho (pool-paho, as before), or the ack link's one paho client (link)")
    ap.add_argument("--pool-size", type=int, default=2, help="connections of the command publisher")
    ap.add_argument("--ack-receiver", choices=("lean", "paho"), default="lean",
                    help="status/ack received as the hub does with 0 ingest workers (lean: hub.ingest.hubrx) "
                         "or through the link's paho client (as the hub did before)")
    ap.add_argument("--no-raw-baseline", action="store_true",
                    help="skip the raw-socket publisher baseline")
    args = ap.parse_args()
    threadnames.install()  # every thread started from here on carries its name in /proc
    opts = Options(rounds=args.rounds, instrument=args.instrument, clients=args.clients,
                   speaker_processes=args.speaker_processes, speaker_connections=args.speaker_connections,
                   publisher=args.publisher, pool_size=args.pool_size, link_receiver=args.ack_receiver,
                   raw_baseline=not args.no_raw_baseline)
    host = {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
    results = [run_size(n, opts) for n in args.speakers]
    host["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = {"bench": "broadcast_fanout", "host": host, "results": results,
           "ok": all(r["complete"] for r in results), "figures": figures(results),
           "latency": {f"broadcast → received ack, {r['speakers']} speakers": r["hub_api_to_received_ack"]
                       for r in results}}
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
