"""Benchmark: HTTP API call → `play` received by every target speaker.

    python -m bench.broadcast_fanout --speakers 1000 10000 --rounds 5

For each fleet size, in one run:
  * a private Mosquitto on a free loopback port;
  * the speakers: one subscription per speaker on its own `vhub/v1/dev/{id}/cmd` topic, spread
    over a few plain paho clients in a child process (10,000 TCP connections in one Python
    process would measure the simulator, not the hub); each command is acked `done` as
    firmware would (so the next round finds idle speakers; baseline messages are acked too,
    to load both runs alike);
  * the hub side: BroadcastService + its MQTT link + the FastAPI broadcast router under
    uvicorn, on the system clock, scheduler thread running;
  * quiet hours are switched off (the bench may run at night, Asia/Shanghai);
  * baseline: a plain paho client publishing the same number of QoS 1 messages of the same
    size to the same topics, timed the same way (send start → arrival at the subscriber);
  * one warm-up round of each, then baseline and hub rounds alternate (same machine load).

Latency of one speaker = arrival time of its play − time the POST was sent (CLOCK_MONOTONIC,
shared by both processes). Prints one JSON object.
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
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import uvicorn
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from bench.sim_scale import _free_port, private_mosquitto
from hub.api.routes.broadcasts import build_router
from hub.broadcasts import (
    BroadcastConfig,
    BroadcastService,
    Principal,
    QuietHours,
    SpeakerRef,
)
from hub.broadcasts.link import BroadcastLink
from hub.clock import SystemClock

ROOT = "vhub/v1"


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
        # speakers' side equally; baseline acks go to a topic no one listens to.
        cmd = json.loads(msg.payload)
        device = msg.topic.split("/")[-2]
        topic = f"{ROOT}/dev/{device}/ack" if cmd["action"] == "play" else f"bench/{device}/ack"
        c.publish(topic, json.dumps({"id": cmd["id"], "state": "done", "ts": time.time()}), qos=1)

    for n, share in enumerate(shares):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-speakers-{n}",
                        protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(1000)
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
        conn.send(got)
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
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, port


def run_size(n: int, rounds: int, clients: int) -> dict[str, Any]:
    ids = [f"spk{i:05d}" for i in range(n)]
    fleet = [SpeakerRef(d, f"v{i // 100:03d}", f"g{i // 20:04d}") for i, d in enumerate(ids)]
    with private_mosquitto() as (url, _pid), tempfile.TemporaryDirectory() as tmp:
        port = int(url.rsplit(":", 1)[1])
        parent, child = mp.Pipe()
        proc = mp.get_context("spawn").Process(target=speakers_process,
                                               args=(port, ids, clients, child), daemon=True)
        proc.start()
        assert parent.poll(120) and parent.recv() == "ready"

        def collect(timeout: float = 60.0) -> list[float]:
            parent.send((n, timeout))
            got: list[float] = parent.recv()
            return got

        # The hub: service + link + HTTP API.
        clock = SystemClock()
        link = BroadcastLink(url, clock, root=ROOT, client_id="bench-hub")
        svc = BroadcastService(Path(tmp) / "broadcasts.db", clock, lambda: fleet, lambda _d: True,
                               link.publish, config=BroadcastConfig(ack_timeout_s=3600, tick_s=1.0,
                                                      quiet_hours=QuietHours.parse("00:00", "00:00")))
        link.attach(svc)
        link.start()
        svc.start()
        app = FastAPI()
        app.include_router(build_router(svc, admin, admin))
        server, http_port = serve(app)
        # Baseline: a plain paho client publishing n QoS 1 messages of the play's size.
        plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-plain",
                            protocol=mqtt.MQTTv5)
        plain.max_inflight_messages_set(1000)
        plain.connect("127.0.0.1", port)
        plain.loop_start()
        body = json.dumps({"id": "0" * 32, "action": "stop", "ts": time.time(),
                           "expires_at": time.time() + 1800, "priority": 3, "volume": 70,
                           "repeat": 1, "media": {"type": "tts", "text": "天干物燥，小心火烛。",
                                                  "lang": "zh"}}).encode()

        def plain_round() -> tuple[list[float], float]:
            t0 = time.monotonic()
            for d in ids:
                info = plain.publish(f"{ROOT}/dev/{d}/cmd", body, qos=1)
            info.wait_for_publish(60)
            sent = time.monotonic() - t0
            return [t - t0 for t in collect()], sent

        def hub_round(http: httpx.Client, r: int) -> tuple[list[float], float, float]:
            t0 = time.monotonic()
            resp = http.post("/api/v1/broadcasts", json={
                "title": f"bench {r}", "media": {"type": "tts", "text": "天干物燥，小心火烛。"},
                "targets": {"all": True}, "priority": 3})
            answered = time.monotonic() - t0
            resp.raise_for_status()
            got = [t - t0 for t in collect()]
            deadline = time.monotonic() + 120
            while svc.dispatch.open and time.monotonic() < deadline:
                time.sleep(0.01)
            return got, answered, time.monotonic() - t0

        base: list[float] = []
        hub: list[float] = []
        publish_s: list[float] = []
        api_s: list[float] = []
        done_s: list[float] = []
        per_round: list[dict[str, float]] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http:
            plain_round()  # warm-up (not counted): connections, caches, first SQLite pages
            hub_round(http, -1)
            for r in range(rounds):  # alternate, so both see the same machine load
                b, sent = plain_round()
                h, answered, done = hub_round(http, r)
                base += b
                hub += h
                publish_s.append(sent)
                api_s.append(answered)
                done_s.append(done)
                per_round.append({"plain_max_ms": round(max(b) * 1000, 1),
                                  "hub_max_ms": round(max(h) * 1000, 1)})
        plain.disconnect()
        plain.loop_stop()
        server.should_exit = True
        svc.stop()
        link.stop()
        parent.send(None)
        proc.join(10)
        return {
            "speakers": n, "rounds": rounds, "subscriber_clients": clients,
            "hub_api_to_play": stats(hub, n * rounds),
            "plain_paho_publish": {**stats(base, n * rounds),
                                   "publish_all_s_median": round(statistics.median(publish_s), 3)},
            "api_response_ms_median": round(statistics.median(api_s) * 1000, 1),
            "all_acked_done_s_median": round(statistics.median(done_s), 3),
            "per_round": per_round,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speakers", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=8, help="paho clients carrying the speakers")
    args = ap.parse_args()
    host = {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
    results = [run_size(n, args.rounds, args.clients) for n in args.speakers]
    host["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = {"bench": "broadcast_fanout", "host": host, "results": results}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
