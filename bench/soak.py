"""Soak: the mixed load of issue 8 for a bounded time — never in CI.

    python -m bench.soak [--minutes 30] [--devices 10000] [--cameras 300] [--speakers 1000] [--ws 20]

One private Mosquitto and influxd, the hub as a child process, a synthetic township of
`--devices` devices imported through the API, then at once:
  * every device heartbeats every 30 s (bench.mqtt_load, paced, seq and live ts);
  * `--cameras` cameras send a pre-rendered 1280×720 JPEG every 10 s (QoS 1);
  * every minute an emergency broadcast (priority 8, so quiet hours never postpone it) goes
    to `--speakers` speakers (whole villages), played and acked `received`/`done` by a
    firmware-like responder;
  * `--ws` WebSocket clients stay on /api/v1/stream;
  * probe heartbeats (2/s) measure publish → queryable latency, per window.
At the end it checks: no loss (every acknowledged (device, seq) is in InfluxDB), latency
percentiles stable (last window's p99 ≤ 2 × the first's + 50 ms), RSS / fds / threads flat
(last fifth vs the fifth after warm-up). Prints one JSON object; exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.api_latency import register
from bench.common import (
    ADMIN_TOKEN,
    BenchHub,
    BenchResult,
    Figure,
    Sampler,
    percentiles,
    run_main,
    servers,
    workdir,
)
from bench.ingest import ProbeLatency
from bench.mqtt_load import LoadSpec, run_load

HEARTBEAT_S, SNAPSHOT_S, BROADCAST_S = 30.0, 10.0, 60.0
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def render_jpegs(n: int = 8) -> list[bytes]:
    """Plausible 720p camera frames (gradient sky, noisy ground, a moving box), JPEG q=80."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        img = np.zeros((720, 1280, 3), np.uint8)
        img[:360] = np.linspace(120, 220, 360, dtype=np.uint8)[:, None, None]
        img[360:] = rng.integers(40, 110, (360, 1280, 3), dtype=np.uint8)
        cv2.rectangle(img, (100 + 120 * i, 300), (260 + 120 * i, 520), (30, 60, 200), -1)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        out.append(buf.tobytes())
    return out


class Cameras(threading.Thread):
    def __init__(self, port: int, ids: list[str], stop: threading.Event) -> None:
        super().__init__(name="soak-cameras", daemon=True)
        self.ids, self.stop_evt, self.frames = ids, stop, render_jpegs()
        self.sent = 0
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="soak-cameras")
        self.c.max_inflight_messages_set(1000)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def run(self) -> None:
        gap = SNAPSHOT_S / max(1, len(self.ids))
        t0, i = time.monotonic(), 0
        while not self.stop_evt.is_set():
            dev = self.ids[i % len(self.ids)]
            self.c.publish(f"vhub/v1/dev/{dev}/snapshot", self.frames[i % len(self.frames)], qos=1)
            self.sent += 1
            i += 1
            self.stop_evt.wait(max(0.0, t0 + i * gap - time.monotonic()))
        self.c.loop_stop()
        self.c.disconnect()


class Speakers:
    """Firmware-like responder for every speaker: acks each play `received` then `done`."""

    def __init__(self, port: int) -> None:
        self.plays = 0
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id="soak-speakers")
        self.c.max_inflight_messages_set(2000)
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe("vhub/v1/dev/+/cmd", qos=1)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
        cmd = json.loads(msg.payload)
        if cmd.get("action") != "play":
            return
        self.plays += 1
        ack = msg.topic.rsplit("/", 1)[0] + "/ack"
        for state in ("received", "done"):
            c.publish(ack, json.dumps({"id": cmd["id"], "state": state, "ts": time.time()}), qos=1)

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def ws_clients(url: str, n: int, stop: threading.Event, counts: list[int]) -> threading.Thread:
    import websockets

    async def one(i: int) -> None:
        async with websockets.connect(f"{url}/api/v1/stream?token={ADMIN_TOKEN}", max_size=None) as ws:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(ws.recv(), 1.0)
                    counts[i] += 1
                except TimeoutError:
                    continue

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)

    t = threading.Thread(target=lambda: asyncio.run(main()), name="soak-ws", daemon=True)
    t.start()
    return t


def pick_targets(devices: int, cameras: int, speakers: int) -> tuple[list[str], list[str]]:
    """The first `cameras` cameras, and whole villages until they hold >= `speakers` speakers."""
    from hub.registry.sample import synthetic_township

    town = synthetic_township(devices)
    cams = [d.id for d in town.devices if d.kind == "camera"][:cameras]
    per_village: dict[str, int] = {}
    for d in town.devices:
        if d.kind == "speaker" and d.village:
            per_village[d.village] = per_village.get(d.village, 0) + 1
    villages, n = [], 0
    for v, k in sorted(per_village.items()):
        if n >= speakers:
            break
        villages.append(v)
        n += k
    return cams, villages


def flatness(series: list[tuple[float, float]]) -> dict[str, float]:
    """Median of the fifth after warm-up vs the last fifth; growth ratio."""
    import statistics

    vals = [v for _, v in series]
    if len(vals) < 10:
        return {"early": 0.0, "late": 0.0, "growth": 0.0}
    k = len(vals) // 5
    early, late = statistics.median(vals[k:2 * k]), statistics.median(vals[-k:])
    return {"early": round(early, 1), "late": round(late, 1), "growth": round(late / early - 1, 3) if early else 0.0}


def run(minutes: float, devices: int, cameras: int, speakers: int, ws: int) -> BenchResult:
    result = BenchResult("soak")
    duration = minutes * 60
    rate = devices / HEARTBEAT_S
    messages = int(rate * duration)
    with workdir() as tmp, servers(tmp) as (broker, db):
        assert db is not None
        hub = BenchHub(tmp, broker.url, db.url).start()
        stop = threading.Event()
        sampler = Sampler(hub.pid, every=2.0).start()
        result.details["registry"] = register(hub, devices)
        cams, spk_villages = pick_targets(devices, cameras, speakers)
        responder = Speakers(broker.port)
        cam_thread = Cameras(broker.port, cams, stop)
        ws_counts = [0] * ws
        ws_thread = ws_clients(hub.url.replace("http", "ws"), ws, stop, ws_counts)
        load: dict[str, Any] = {}
        spec = LoadSpec(port=broker.port, messages=messages, devices=devices, rate=rate, prefix="d", id_digits=6,
                        kinds="synthetic", ts_live=True, ts_step=HEARTBEAT_S, timeout_s=duration + 120)
        load_thread = threading.Thread(target=lambda: load.update(run_load(spec).to_dict()), daemon=True)
        load_thread.start()
        cam_thread.start()
        broadcasts: list[dict[str, Any]] = []
        windows: list[dict[str, float]] = []
        t_end = time.monotonic() + duration
        with httpx.Client(base_url=hub.url, headers=AUTH, timeout=30) as api:
            while time.monotonic() < t_end:
                r = api.post("/api/v1/broadcasts", json={
                    "title": "soak", "media": {"type": "tts", "text": "天干物燥，小心火烛。", "lang": "zh"},
                    "targets": {"villages": spk_villages}, "priority": 8, "volume": 60, "repeat": 1})
                broadcasts.append({"id": r.json().get("id") if r.status_code == 201 else None,
                                   "status": r.status_code, "at": time.time()})
                probe = ProbeLatency(broker, db, "villagehub", rate=2.0, seq_start=len(windows) * 1000)
                probe.run(min(BROADCAST_S - 10, max(1.0, t_end - time.monotonic() - 10)))
                windows.append(percentiles(probe.latencies()))
                time.sleep(max(0.0, min(10.0, t_end - time.monotonic())))
            for b in broadcasts:
                if b["id"]:
                    s = api.get(f"/api/v1/broadcasts/{b['id']}").json()
                    b["summary"] = [o.get("summary") for o in s.get("occurrences", [])]
        stop.set()
        load_thread.join(120)
        cam_thread.join(10)
        ws_thread.join(10)
        responder.stop()
        expected = int(load.get("acked", 0))  # heartbeats the broker acknowledged
        stored = 0.0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            series = db.query("SELECT count(seq) FROM heartbeat WHERE device =~ /^d[0-9]/")
            stored = float(series[0]["values"][0][1]) if series else 0.0  # type: ignore[index]
            if stored >= expected:
                break
            time.sleep(1)
        samples = sampler.stop()
        result.details["sigterm_exit_s"] = round(hub.terminate(), 2)
    flat = {k: flatness(samples.get(k, [])) for k in ("rss_mb", "fds", "threads")}
    first, last = (windows[0], windows[-1]) if windows else ({}, {})
    stable = bool(windows) and last.get("p99", 1e9) <= 2 * first.get("p99", 0) + 50
    done = sum(sum(int((s or {}).get("done", 0)) for s in b.get("summary", [])) for b in broadcasts)
    total = sum(sum(int((s or {}).get("total", 0)) for s in b.get("summary", [])) for b in broadcasts)
    result.details.update({"minutes": minutes, "heartbeat_load": load, "heartbeats_stored": int(stored),
                           "snapshots_sent": cam_thread.sent, "broadcasts": len(broadcasts),
                           "broadcast_deliveries_done": done, "broadcast_deliveries_total": total,
                           "plays_received": responder.plays, "ws_messages": ws_counts, "flatness": flat,
                           "latency_windows": windows, "speaker_villages": len(spk_villages)})
    result.series = {"rss_mb[soak]": samples.get("rss_mb", []), "fds[soak]": samples.get("fds", []),
                     "threads[soak]": samples.get("threads", [])}
    for i, w in enumerate(windows):
        result.latency[f"publish→queryable, minute {i + 1}"] = w
    result.figures = [
        Figure("heartbeats stored", stored, "count", "acknowledged by the broker", expected,
               "all", stored == expected),
        Figure("publish→queryable p99, last window", last.get("p99", -1), "ms", "first window", first.get("p99"),
               "<= 2x first + 50 ms", stable, higher_is_better=False),
        Figure("RSS growth (last fifth vs after warm-up)", flat["rss_mb"]["growth"] * 100, "%",
               target="<= 10 %", met=flat["rss_mb"]["growth"] <= 0.10, higher_is_better=False),
        Figure("fds growth", flat["fds"]["growth"] * 100, "%", target="<= 10 %",
               met=flat["fds"]["growth"] <= 0.10, higher_is_better=False),
        Figure("threads growth", flat["threads"]["growth"] * 100, "%", target="<= 10 %",
               met=flat["threads"]["growth"] <= 0.10, higher_is_better=False),
        Figure("broadcast deliveries done", done, "count", "deliveries due", total, "all", done == total),
    ]
    failed = [f.name for f in result.figures if f.met is False]
    result.ok = not failed
    result.error = ("checks failed: " + "; ".join(failed)) if failed else None
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--cameras", type=int, default=300)
    ap.add_argument("--speakers", type=int, default=1000)
    ap.add_argument("--ws", type=int, default=20)
    a = ap.parse_args(argv)
    return run_main("soak", lambda: run(a.minutes, a.devices, a.cameras, a.speakers, a.ws))


if __name__ == "__main__":
    raise SystemExit(main())
