"""API latency at 10,000 registered devices heartbeating (issue 8).

    python -m bench.api_latency [--devices 10000] [--requests 1000] [--quick]

One private Mosquitto and influxd, the hub as a child process (`python -m hub serve`). A
synthetic township of `--devices` devices (hub.registry.sample.synthetic_township) is imported
through `POST /api/v1/registry/import`; every device sends one heartbeat (so all are online),
then they keep heartbeating at `--rate` msg/s (default: every 10 s each) through
bench.mqtt_load while one HTTP client (keep-alive) requests, round-robin:
  `/healthz` (the baseline: the same server and client doing no work),
  `/api/v1/overview`, `/api/v1/devices` (first page of 100) and `/api/v1/devices?kind=camera&status=online`.
Reports p50/p90/p99 of each, overview p99 against its 20 ms target, and the hub's peak RSS
(target ≤ 250 MB). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import httpx

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
from bench.mqtt_load import LoadSpec, run_load

ROUTES = {
    "/healthz": "/healthz",
    "overview": "/api/v1/overview",
    "devices": "/api/v1/devices",
    "devices camera online": "/api/v1/devices?kind=camera&status=online",
}
OVERVIEW_P99_MS = 20.0
RSS_MB = 250.0


def register(hub: BenchHub, devices: int) -> dict[str, Any]:
    from hub.registry.sample import synthetic_township
    from hub.registry.township_yaml import to_yaml

    body = to_yaml(synthetic_township(devices)).encode()
    t0 = time.monotonic()
    r = httpx.post(hub.url + "/api/v1/registry/import", content=body, timeout=300,
                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/yaml"})
    r.raise_for_status()
    return {"import_s": round(time.monotonic() - t0, 2), "report": r.json()}


def measure(hub: BenchHub, requests: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ROUTES}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=30) as client:
        for path in ROUTES.values():  # warm-up
            client.get(path).raise_for_status()
        for _ in range(requests):
            for name, path in ROUTES.items():
                t0 = time.perf_counter()
                r = client.get(path)
                out[name].append(time.perf_counter() - t0)
                r.raise_for_status()
    return out


def run(devices: int, requests: int, rate: float, quick: bool) -> BenchResult:
    result = BenchResult("api_latency", quick=quick)
    with workdir() as tmp, servers(tmp) as (broker, db):
        assert db is not None
        hub = BenchHub(tmp, broker.url, db.url).start()
        sampler = Sampler(hub.pid, every=0.5).start()
        try:
            result.details["registry"] = register(hub, devices)
            spec = dict(port=broker.port, devices=devices, prefix="d", id_digits=6, kinds="synthetic")
            first = run_load(LoadSpec(messages=devices, **spec))  # type: ignore[arg-type]
            result.details["first_heartbeats"] = first.to_dict()
            time.sleep(1.0)
            # keep heartbeating while measuring; long enough to outlast the requests
            duration = requests * len(ROUTES) * 0.02 + 30
            bg: dict[str, Any] = {}
            t = threading.Thread(target=lambda: bg.update(run_load(LoadSpec(
                messages=int(rate * duration), rate=rate, seq_start=1, ts_live=True,
                timeout_s=duration + 60, **spec)).to_dict()), daemon=True)  # type: ignore[arg-type]
            t.start()
            time.sleep(2.0)
            lat = measure(hub, requests)
            overview = httpx.get(hub.url + "/api/v1/overview", timeout=10,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
            result.details["overview_devices"] = overview.get("devices")
        finally:
            series = sampler.stop()
            result.details["sigterm_exit_s"] = round(hub.terminate(), 2)
        t.join(1)
        result.details["background_load"] = bg or "still running when measuring ended (expected)"
        result.details["background_rate"] = rate
        for name, vals in lat.items():
            result.latency[name] = percentiles(vals)
        result.series["rss_mb[api_latency]"] = series.get("rss_mb", [])
        base = result.latency["/healthz"]
        ov, dv = result.latency["overview"], result.latency["devices"]
        rss = round(sampler.peak("rss_mb"), 1)
        result.figures = [
            Figure(f"/api/v1/overview p99 at {devices:,} devices", ov["p99"], "ms", "/healthz p99", base["p99"],
                   f"<= {OVERVIEW_P99_MS:g} ms", ov["p99"] <= OVERVIEW_P99_MS, higher_is_better=False),
            Figure("/api/v1/overview p50", ov["p50"], "ms", "/healthz p50", base["p50"], higher_is_better=False),
            Figure(f"/api/v1/devices p99 (page of 100 of {devices:,})", dv["p99"], "ms", "/healthz p99",
                   base["p99"], higher_is_better=False),
            Figure("/api/v1/devices?kind=camera&status=online p99", result.latency["devices camera online"]["p99"],
                   "ms", "/healthz p99", base["p99"], higher_is_better=False),
            Figure(f"hub peak RSS at {devices:,} devices", rss, "MB", target=f"<= {RSS_MB:g} MB",
                   met=rss <= RSS_MB, higher_is_better=False),
        ]
        by_kind = overview.get("devices") or {}
        result.details["online_reported"] = sum(int(v.get("online", 0)) for v in by_kind.values())
        if result.details["online_reported"] < devices * 0.99:
            result.ok, result.error = False, f"only {result.details['online_reported']} of {devices} devices online"
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=1000, help="per route")
    ap.add_argument("--rate", type=float, default=None, help="heartbeats/s while measuring; default devices/10")
    ap.add_argument("--quick", action="store_true", help="CI-sized: 200 requests per route")
    a = ap.parse_args(argv)
    requests = 200 if a.quick else a.requests
    rate = a.rate or a.devices / 10
    return run_main("api_latency", lambda: run(a.devices, requests, rate, a.quick))


if __name__ == "__main__":
    raise SystemExit(main())
