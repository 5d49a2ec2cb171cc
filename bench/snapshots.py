"""Camera snapshots analysed per second, beside plain full-colour `cv2.imdecode` on one core.

    .venv/bin/python bench/snapshots.py [--seconds 5] [--quick]

Measures, in one run, on 1080p JPEGs (synthetic textured village scenes, ~0.5 MB each):
  * baseline: `cv2.imdecode(IMREAD_COLOR)` in a loop on one core;
  * the pipeline alone (reduced decode + metrics + thumbnail) on one core;
  * the SnapshotService end to end (checks, latest-wins slots, analysis, health, files,
    points) with thread workers and with process workers, one per core, while a thread
    parses heartbeats (hub.devices.heartbeat) as fast as it can; the heartbeat rate alone is the
    baseline for "heartbeat ingest unharmed".
Prints one JSON object and writes bench/results/snapshots.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

from bench.common import RESULTS_DIR, BenchResult, Figure
from hub import metrics
from hub.clock import SystemClock
from hub.devices.heartbeat import parse_heartbeat
from hub.messages import InboundMessage, Point
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.jpeg import JpegInfo, inspect_jpeg
from hub.snapshots.pipeline import analyse_jpeg
from hub.snapshots.service import SnapshotService
from hub.snapshots.storage import SnapshotStorage
from hub.snapshots.synthetic import encode, fault, render_scene

HEARTBEAT = json.dumps({"kind": "camera", "seq": 1, "interval_s": 30, "uptime_s": 86400, "rssi_dbm": -61,
                        "fw": "2.4.1", "fps": 25, "bitrate_kbps": 2048, "temp_c": 41.5,
                        "storage_free_pct": 63, "recording": True}).encode()
TARGET = 150.0


class _Null:
    def raise_alert(self, key: str, **kw: Any) -> None: ...
    def clear_alert(self, key: str, ts: float) -> None: ...
    def publish(self, *args: Any, **kw: Any) -> None: ...


def frames(n: int) -> list[bytes]:
    return [encode(fault(render_scene(seed % 4), "ok", frame=seed)) for seed in range(n)]


def rate(fn: Any, items: list[Any], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(items[done % len(items)])
        done += 1
    return done / (time.perf_counter() - start)


class HeartbeatLoad(threading.Thread):
    """Parses heartbeats (hub.devices.heartbeat, the ingest path's per-message Python work) at a paced
    rate; `rate=0` means as fast as it can. `count` is what it managed."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.rate = rate
        self.count = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while not self.stop_event.is_set():
            for _ in range(50):
                parse_heartbeat("cam-00001", HEARTBEAT, 1_764_400_000.0)
            self.count += 50
            if self.rate:
                ahead = self.count / self.rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)


def heartbeat_alone(seconds: float) -> float:
    load = HeartbeatLoad()
    load.start()
    time.sleep(seconds)
    load.stop_event.set()
    load.join()
    return load.count / seconds


def service_rate(jpegs: list[bytes], executor: str, seconds: float, hb_rate: float, cameras: int = 200) -> dict[str, float]:
    analysed = lambda: metrics.REGISTRY.get_sample_value("vh_snapshots_analysed_total") or 0.0  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="vh-bench-snap-") as tmp:
        null = _Null()
        points: list[Point] = []
        svc = SnapshotService(
            storage=SnapshotStorage(Path(tmp), history_min_interval_s=3600), clock=SystemClock(),
            emit_points=points.extend, alerts=null, events=null, lookup=lambda d: ("v01", "g01"),
            publisher=null, config=SnapshotConfig(executor=executor),  # type: ignore[arg-type]
        )
        svc.start()
        for i in range(2 * svc.config.worker_count):  # warm the workers (process start, imports)
            svc.offer(InboundMessage("t", f"warm{i}", "snapshot", jpegs[0], 0, False, 0, time.time()))
        svc.wait_idle(60)
        load = HeartbeatLoad(hb_rate)
        load.start()
        before, superseded0 = analysed(), metrics.REGISTRY.get_sample_value("vh_snapshots_superseded_total") or 0
        start = time.perf_counter()
        i = 0
        while time.perf_counter() - start < seconds:
            # Offer ~400/s (more than it can take) over `cameras` cameras in bursts of 20; a
            # camera whose last snapshot still waits has it replaced (latest wins), as in production.
            for _ in range(20):
                svc.offer(InboundMessage("t", f"cam-{i % cameras:04d}", "snapshot", jpegs[i % len(jpegs)], 0, False, 0, time.time()))
                i += 1
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        done = analysed() - before
        load.stop_event.set()
        load.join()
        svc.stop()
    superseded = (metrics.REGISTRY.get_sample_value("vh_snapshots_superseded_total") or 0) - superseded0
    return {"snapshots_per_s": done / elapsed, "offered_per_s": i / elapsed, "superseded": superseded,
            "heartbeats_per_s": load.count / elapsed, "workers": svc.config.worker_count}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--heartbeats", type=float, default=5000.0, help="heartbeats/s parsed meanwhile")
    args = ap.parse_args()
    seconds = 1.5 if args.quick else args.seconds
    result = BenchResult("snapshots", quick=args.quick)
    t0 = time.perf_counter()
    jpegs = frames(16)
    infos = [inspect_jpeg(j, max_bytes=1 << 23, max_pixels=40_000_000) for j in jpegs]
    assert all(isinstance(i, JpegInfo) for i in infos)
    pairs = list(zip(jpegs, infos, strict=True))
    cv2.setNumThreads(1)

    baseline = rate(lambda j: cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR), jpegs, seconds)
    pipeline_1 = rate(lambda p: analyse_jpeg(p[0], p[1]), pairs, seconds)
    hb_max = heartbeat_alone(seconds)
    threads = service_rate(jpegs, "thread", seconds, args.heartbeats)
    procs = service_rate(jpegs, "process", seconds, args.heartbeats)
    best = max(threads["snapshots_per_s"], procs["snapshots_per_s"])
    chosen = threads if threads["snapshots_per_s"] >= procs["snapshots_per_s"] else procs
    result.ok = best >= TARGET and chosen["heartbeats_per_s"] >= 0.98 * args.heartbeats

    result.figures = [
        Figure("service_snapshots_per_s_threads", round(threads["snapshots_per_s"], 1), "1/s",
               "imdecode_colour_1core_per_s", round(baseline, 1), f">= {TARGET:.0f}/s",
               threads["snapshots_per_s"] >= TARGET),
        Figure("service_snapshots_per_s_processes", round(procs["snapshots_per_s"], 1), "1/s",
               "imdecode_colour_1core_per_s", round(baseline, 1), f">= {TARGET:.0f}/s",
               procs["snapshots_per_s"] >= TARGET),
        Figure("pipeline_1core_per_s", round(pipeline_1, 1), "1/s", "imdecode_colour_1core_per_s", round(baseline, 1)),
        Figure("heartbeats_parsed_per_s_during_snapshots", round(chosen["heartbeats_per_s"]), "1/s",
               "heartbeats_offered_per_s", args.heartbeats, "ratio >= 0.98",
               chosen["heartbeats_per_s"] >= 0.98 * args.heartbeats),
    ]
    result.details = {
        "cpus": os.cpu_count(), "opencv": cv2.__version__, "frame": "1920x1080 JPEG q85",
        "mean_jpeg_bytes": int(np.mean([len(j) for j in jpegs])), "seconds_per_phase": seconds,
        "threads": threads, "processes": procs, "heartbeats_parsed_per_s_max_one_thread": round(hb_max),
        "load_average_at_end": os.getloadavg(),
        "chosen_executor": "thread" if chosen is threads else "process", "best_per_s": round(best, 1),
    }
    result.duration_s = time.perf_counter() - t0
    result.print_json()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "snapshots.json").write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
