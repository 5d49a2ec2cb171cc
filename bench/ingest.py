"""Ingest benchmark (issue 2): the hub's heartbeat rate into InfluxDB against mosquitto_sub.

    python -m bench.ingest [--messages 300000] [--workers 0,2] [--quick]

In one run, on one private Mosquitto and one private influxd (loopback, temp dirs):
 (a) baseline: `mosquitto_sub -q 1 -C N` receives N heartbeats of 10,000 devices published
     as fast as `bench.mqtt_load` can; its rate is N / (first publish → its exit);
 (b) the hub (`python -m hub serve`, VH_INFLUX_URL) gets the same N; its rate is
     N / (first publish → `SELECT count(seq) FROM heartbeat` = N), i.e. validated AND queryable;
 (c) their ratio (target ≥ 0.5);
 (d) publish → queryable latency p50/p99 at half the hub's rate: probe heartbeats with unique
     seq, InfluxDB polled every 20 ms (so figures carry up to ~20 ms of polling granularity);
 (e) the hub's peak RSS (its whole process tree);
 (f) the hub's CPU per stored heartbeat: user + system CPU seconds of its whole process tree
     (psutil) from the first publish until all N are queryable, divided by N — the figure that
     does not depend on how busy the machine is.
(b)–(f) are repeated for every VH_INGEST_WORKERS value given. Prints one JSON object.

`--no-baselines --latency-seconds 0` measures only (b), (e) and (f) (a development loop);
`--profile DIR` records a py-spy profile of the hub tree during (b) into DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import (
    BenchHub,
    BenchResult,
    Figure,
    Sampler,
    influx_scalar,
    metric_sum,
    percentiles,
    rate_series,
    run_main,
    scrape,
    servers,
    thread_cpu_s,
    threads_us_per_msg,
    workdir,
)
from bench.mqtt_load import LoadRun, LoadSpec, heartbeat_payload, run_load
from tests.servers import InfluxServer, MosquittoServer, find_binary

DEVICES = 10_000
PROBE_DEVICE = "bench-probe"
TARGET_RATIO = 0.5
TARGET_P99_MS = 1500.0
TARGET_CPU_US = 30.0  # the hub's CPU per heartbeat that a 0.5 ratio needs on 2 cores (issue 12)


def mosquitto_sub_rate(broker: MosquittoServer, messages: int, timeout: float) -> dict[str, Any]:
    sub = subprocess.Popen(
        [find_binary("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
         "-t", "vhub/v1/dev/+/heartbeat", "-C", str(messages), "-i", "bench-mosquitto-sub"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        run = LoadRun(LoadSpec(port=broker.port, messages=messages, devices=DEVICES, prefix="base-",
                               timeout_s=timeout))
        run.prepare()
        time.sleep(0.5)  # mosquitto_sub has subscribed long before
        budget = CpuBudget({"broker": broker.process.pid, "mosquitto_sub": sub.pid})
        t0 = run.start()
        load = run.wait()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sub.wait(timeout)  # the only child waited for from here on: its CPU is the difference
        t1 = time.time()
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        budget.pids.pop("mosquitto_sub")
        cpu = budget.stop(messages, load.cpu_s, {"mosquitto_sub": children1.ru_utime + children1.ru_stime
                                                  - children0.ru_utime - children0.ru_stime})
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(5)
    elapsed = t1 - load.started_at
    return {"rate": messages / elapsed, "elapsed_s": round(elapsed, 3), "publish_rate": round(load.rate),
            "load_error": load.error, "exit_code": sub.returncode, "t_go": t0, "cpu_budget": cpu}


def influx_raw_rate(db: InfluxServer, messages: int, batch: int = 5000, clients: int = 1) -> dict[str, Any]:
    """InfluxDB's own write rate for the same heartbeat points (hub encoder, batches of `batch`,
    `clients` concurrent HTTP clients): what the store allows, with no MQTT and no validation."""
    import httpx

    from bench.mqtt_load import device_kind
    from hub.devices.heartbeat import Heartbeat, heartbeat_point_fields, parse_heartbeat
    from hub.tsdb.lineprotocol import encode_line, line_head

    database = f"bench_raw{clients}"
    httpx.post(f"{db.url}/query", params={"q": f"CREATE DATABASE {database}"}, timeout=10).raise_for_status()
    t_base = time.time()
    lines = []  # the load generator's heartbeats (cameras and speakers), encoded as the hub does
    for i in range(messages):
        kind = device_kind(i % DEVICES)
        hb = parse_heartbeat("raw", heartbeat_payload(kind, i // DEVICES, t_base + (i // DEVICES) * 0.001), t_base)
        assert isinstance(hb, Heartbeat)
        head = line_head("heartbeat", {"device": f"raw-{i % DEVICES:05d}", "kind": kind})
        lines.append(encode_line(head, heartbeat_point_fields(hb), hb.time, "heartbeat"))
    bodies = ["\n".join(lines[k:k + batch]).encode() for k in range(0, len(lines), batch)]

    def writer(part: list[bytes]) -> None:
        with httpx.Client(timeout=60) as client:
            for body in part:
                client.post(f"{db.url}/write", params={"db": database, "precision": "ns"},
                            content=body).raise_for_status()

    threads = [threading.Thread(target=writer, args=(bodies[i::clients],)) for i in range(clients)]
    cpu0 = proc_cpu_s(db.process.pid)
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    influxd_us = (proc_cpu_s(db.process.pid) - cpu0) / messages * 1e6
    return {"rate": messages / elapsed, "elapsed_s": round(elapsed, 3), "batch": batch, "clients": clients,
            "influxd_cpu_us_per_point": round(influxd_us, 1)}


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (alive ones)."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    with contextlib.suppress(psutil.Error):
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    return 0.0


class CpuBudget:
    """Where the machine's CPU went while N heartbeats crossed it: broker, store, load generator
    and the consumer (the hub's tree or mosquitto_sub), in µs per message, and the share of all
    cores they used. On a saturated machine, rate ≈ cores / Σ(µs per message): the figure tells
    how fast the hub could go at all when the others keep their cost."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: (tree_cpu_s(pid) if name == "hub" else proc_cpu_s(pid)) for name, pid in pids.items()}
        self.t0 = time.monotonic()

    def stop(self, messages: int, load_cpu_s: float, more: dict[str, float] | None = None) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        used = {name: (tree_cpu_s(pid) if name == "hub" else proc_cpu_s(pid)) - self.start[name]
                for name, pid in self.pids.items()}
        used.update(more or {})
        used["load generator"] = load_cpu_s
        per_msg = {name: round(cpu / max(messages, 1) * 1e6, 1) for name, cpu in used.items()}
        cores = psutil.cpu_count() or 1
        total = sum(used.values())
        return {"us_per_msg": per_msg, "us_per_msg_total": round(sum(per_msg.values()), 1),
                "cpu_s": {k: round(v, 2) for k, v in used.items()}, "wall_s": round(wall, 3),
                "cores": cores, "machine_busy_share": round(total / (wall * cores), 3),
                "rate_bound_if_saturated": round(cores / max(total / max(messages, 1), 1e-9))}


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy record of the hub and its worker processes (raw collapsed stacks), or None."""
    exe = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv/bin/py-spy")
    if not Path(exe).exists():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                             "--rate", "200", "--nonblocking", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class ProbeLatency:
    """Publishes probe heartbeats (unique seq) at `rate`/s and polls InfluxDB until each is there."""

    def __init__(self, broker: MosquittoServer, db: InfluxServer, database: str, rate: float = 10.0,
                 seq_start: int = 0) -> None:
        self.db, self.database, self.rate, self.seq_start = db, database, rate, seq_start
        self.sent: dict[int, float] = {}
        self.seen: dict[int, float] = {}
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{broker.port}")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self._stop = threading.Event()

    def run(self, seconds: float) -> None:
        poller = threading.Thread(target=self._poll, daemon=True)
        poller.start()
        seq = self.seq_start
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            payload = heartbeat_payload("camera", seq, time.time())
            self.sent[seq] = time.monotonic()
            self.client.publish(f"vhub/v1/dev/{PROBE_DEVICE}/heartbeat", payload, qos=1)
            seq += 1
            time.sleep(1 / self.rate)
        drain_until = time.monotonic() + 10
        while len(self.seen) < len(self.sent) and time.monotonic() < drain_until:
            time.sleep(0.05)
        self._stop.set()
        poller.join(5)
        self.client.loop_stop()
        self.client.disconnect()

    def _poll(self) -> None:
        q = f"SELECT seq FROM heartbeat WHERE device='{PROBE_DEVICE}' AND seq >= {self.seq_start}"
        while not self._stop.is_set():
            try:
                rows = self.db.rows(q, self.database)
            except Exception:
                rows = []
            now = time.monotonic()
            for r in rows:
                s = int(r["seq"])  # type: ignore[call-overload]
                if s in self.sent and s not in self.seen:
                    self.seen[s] = now
            time.sleep(0.02)

    def latencies(self) -> list[float]:
        return [self.seen[s] - self.sent[s] for s in self.seen if s in self.sent]


class HubMetrics:
    """The hub's /metrics, scraped at most every `max_age` seconds however many ask: a scrape
    costs the hub CPU (rendering alone 1.2 ms at 10,000 devices, plus the HTTP request), which
    the CPU per heartbeat this bench reports would otherwise include 20 times a second."""

    def __init__(self, url: str, max_age: float = 0.2) -> None:
        self.url, self.max_age = url, max_age
        self._at = float("-inf")
        self._samples: dict[str, float] = {}
        self._lock = threading.Lock()

    def samples(self) -> dict[str, float]:
        with self._lock:
            if time.monotonic() - self._at >= self.max_age:
                self._samples, self._at = scrape(self.url), time.monotonic()
            return self._samples

    def received(self) -> float:
        return metric_sum(self.samples(), "vh_messages_received_total", kind="heartbeat")

    def stored(self) -> float:
        """Heartbeat points the hub says InfluxDB accepted."""
        return metric_sum(self.samples(), "vh_points_stored_total", measurement="heartbeat")


def wait_queryable(hub_metrics: HubMetrics, db: InfluxServer, count_q: str, database: str, messages: int,
                   deadline: float) -> float:
    """Until `count_q` returns `messages` (or the deadline): the count is asked when the hub's
    metric says all are stored, and every 10 s in any case. Counting is not free: at 100,000
    points one count costs influxd ~230 ms of CPU (700 ms at 300,000), so polling it every
    100 ms, as this bench did, took up to a core from the two the hub shares with influxd
    (docs/benchmarks.md, "The instrument"); the clock still stops only when the points are
    queryable."""
    stored = 0.0
    next_count = time.monotonic() + 10.0  # a count in any case, this often
    next_quick = 0.0  # and when the hub says all are stored, at most this often
    while time.monotonic() < deadline:
        now = time.monotonic()
        with contextlib.suppress(Exception):
            if (now >= next_quick and hub_metrics.stored() >= messages) or now >= next_count:
                next_count, next_quick = now + 10.0, now + 0.5
                stored = influx_scalar(db, count_q, database)
                if stored >= messages:
                    return stored
        time.sleep(0.05)
    return stored


def hub_run(tmp: Path, broker: MosquittoServer, db: InfluxServer, messages: int, workers: int | None,
            latency_s: float, timeout: float, profile_dir: Path | None = None) -> dict[str, Any]:
    database = f"bench_w{workers if workers is not None else 'd'}"
    extra: dict[str, Any] = {"influx_db": database}
    if workers is not None:
        extra["ingest_workers"] = workers
    hub = BenchHub(tmp, broker.url, db.url, **extra).start()
    count_q = "SELECT count(seq) FROM heartbeat WHERE device =~ /^load-/"
    hub_metrics = HubMetrics(hub.url)
    sampler = Sampler(hub.pid, every=0.5, probes={
        "received": hub_metrics.received,
        "stored": hub_metrics.stored,
    }).start()
    out: dict[str, Any] = {"workers": workers, "database": database}
    stored = 0.0
    try:
        run = LoadRun(LoadSpec(port=broker.port, messages=messages, devices=DEVICES, prefix="load-",
                               timeout_s=timeout))
        run.prepare()
        spy = start_profile(hub.pid, profile_dir / f"ingest-w{workers}.txt") if profile_dir else None
        cpu0 = tree_cpu_s(hub.pid)
        threads0 = thread_cpu_s(hub.pid)
        budget = CpuBudget({"hub": hub.pid, "broker": broker.process.pid, "influxd": db.process.pid})
        run.start()
        load = run.wait()
        deadline = time.monotonic() + timeout
        stored = wait_queryable(hub_metrics, db, count_q, database, messages, deadline)
        t_done = time.time()
        cpu1 = tree_cpu_s(hub.pid)
        out["cpu_budget"] = budget.stop(messages, load.cpu_s)
        out["hub_threads_us_per_msg"] = threads_us_per_msg(threads0, thread_cpu_s(hub.pid), messages)
        stop_profile(spy)
        elapsed = t_done - load.started_at
        out.update({"stored": int(stored), "elapsed_s": round(elapsed, 3), "rate": stored / elapsed,
                    "publish_rate": round(load.rate), "load_error": load.error, "complete": stored == messages,
                    "cpu_s": round(cpu1 - cpu0, 3),
                    "cpu_us_per_msg": round((cpu1 - cpu0) / max(stored, 1) * 1e6, 1)})
        if latency_s <= 0:
            return out
        # (d) latency at half the measured rate, with background load at that rate
        half = max(100.0, out["rate"] / 2)
        bg_messages = int(half * latency_s)
        seq_start = messages // DEVICES + 1
        probe = ProbeLatency(broker, db, database)
        bg = threading.Thread(target=lambda: out.__setitem__("bg", run_load(LoadSpec(
            port=broker.port, messages=bg_messages, devices=DEVICES, prefix="load-", rate=half,
            seq_start=seq_start, timeout_s=latency_s + timeout)).to_dict()), daemon=True)
        bg.start()
        time.sleep(0.5)
        probe.run(latency_s)
        bg.join(timeout)
        out["latency_load_rate"] = round(half)
        out["latency"] = percentiles(probe.latencies())
        out["probes_sent"], out["probes_seen"] = len(probe.sent), len(probe.seen)
        expected = messages + bg_messages
        stored = wait_queryable(hub_metrics, db, count_q, database, expected, deadline + latency_s)
        out["stored_total"], out["expected_total"] = int(stored), expected
    finally:
        with contextlib.suppress(Exception):
            m = scrape(hub.url)
            out["metrics"] = {k: metric_sum(m, f"vh_messages_{k}_total", kind="heartbeat")
                              for k in ("received", "accepted", "rejected", "dropped")}
            out["metrics"]["points_stored"] = metric_sum(m, "vh_points_stored_total", measurement="heartbeat")
            out["lost"] = max(0, int(out.get("expected_total", messages)) - int(out.get("stored_total", stored)))
        series = sampler.stop()
        out["rss_peak_mb"] = round(sampler.peak("rss_mb"), 1)
        out["sigterm_exit_s"] = round(hub.terminate(), 2)
        out["series"] = series
    return out


def budget_figures(budget: dict[str, Any] | None, label: str, base: dict[str, Any],
                   raw: dict[str, Any]) -> list[Figure]:
    """What the other processes on the same cores cost per heartbeat, and the rate they leave
    possible: with a hub that cost nothing, the machine could store at most
    cores / (broker + influxd + load generator) heartbeats per second. Its ratio to
    mosquitto_sub's rate is the best ratio this machine allows at all (issue 12's 0.5 needs it
    to be well above 0.5)."""
    if not budget:
        return []
    us = budget["us_per_msg"]
    others = sum(v for k, v in us.items() if k != "hub")
    out = [Figure(f"influxd CPU per stored heartbeat ({label})", us.get("influxd", 0.0), "µs",
                  "influxd CPU per point, its own /write (batches of 5000)",
                  raw.get("influxd_cpu_us_per_point"), higher_is_better=False)]
    if others > 0:
        bound = budget["cores"] * 1e6 / others
        out.append(Figure(f"rate bound if the hub cost nothing ({label}): cores / (broker + influxd + load)",
                          round(bound), "msg/s", "mosquitto_sub -q 1" if base else None,
                          round(base["rate"]) if base else None))
    return out


def run(messages: int, workers: list[int | None], latency_s: float, timeout: float,
        baselines: bool = True, profile_dir: Path | None = None) -> BenchResult:
    result = BenchResult("ingest")
    with workdir() as tmp, servers(tmp) as (broker, db):
        assert db is not None
        base: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        if baselines:
            base = mosquitto_sub_rate(broker, messages, timeout)
            result.details["mosquitto_sub"] = base
            raw = influx_raw_rate(db, messages)
            result.details["influx_raw_write"] = raw
            result.details["influx_raw_write_2_clients"] = influx_raw_rate(db, messages, clients=2)
        for w in workers:
            r = hub_run(tmp, broker, db, messages, w, latency_s, timeout, profile_dir)
            series = r.pop("series")
            tag = f"w{w}" if w is not None else "default"
            label = f"VH_INGEST_WORKERS={w}" if w is not None else "default settings"
            result.details[f"hub_{tag}"] = r
            result.series[f"rss_mb[{tag}]"] = series.get("rss_mb", [])
            result.series[f"hub received msg/s[{tag}]"] = rate_series(series.get("received", []))
            result.series[f"hub stored msg/s[{tag}]"] = rate_series(series.get("stored", []))
            if base:
                result.figures += [
                    Figure(f"hub heartbeats stored/s ({label})", round(r["rate"]), "msg/s", "mosquitto_sub -q 1",
                           round(base["rate"]), f"ratio >= {TARGET_RATIO}",
                           r["rate"] / base["rate"] >= TARGET_RATIO),
                    Figure(f"hub heartbeats stored/s ({label}) vs the store alone", round(r["rate"]), "msg/s",
                           "InfluxDB /write, same points, batches of 5000", round(raw["rate"])),
                ]
            else:
                result.figures.append(Figure(f"hub heartbeats stored/s ({label})", round(r["rate"]), "msg/s"))
            # beside mosquitto_sub's own CPU per message of the same load: a ratio that moves less
            # with the host than the rates do (both are consumers on the same broker)
            sub_us = (base.get("cpu_budget") or {}).get("us_per_msg", {}).get("mosquitto_sub")
            result.figures.append(Figure(f"hub CPU per stored heartbeat ({label}, whole process tree)",
                                         r["cpu_us_per_msg"], "µs",
                                         "mosquitto_sub CPU per message, same load" if sub_us else None,
                                         sub_us, target=f"<= {TARGET_CPU_US:.0f} µs",
                                         met=r["cpu_us_per_msg"] <= TARGET_CPU_US, higher_is_better=False))
            result.figures += budget_figures(r.get("cpu_budget"), label, base, raw)
            if "latency" in r:
                result.latency[f"publish→queryable [{tag}]"] = r["latency"]
                p99 = r["latency"].get("p99", -1)
                result.figures += [
                    Figure(f"publish→queryable p50 at half load ({label})", r["latency"].get("p50", -1), "ms",
                           higher_is_better=False),
                    Figure(f"publish→queryable p99 at half load ({label})", p99, "ms",
                           target=f"<= {TARGET_P99_MS:.0f} ms", met=0 <= p99 <= TARGET_P99_MS,
                           higher_is_better=False),
                ]
            result.figures += [
                Figure(f"heartbeats lost ({label})", r.get("lost", -1), "count", target="0",
                       met=r.get("lost", -1) == 0, higher_is_better=False),
                Figure(f"hub peak RSS ({label})", r["rss_peak_mb"], "MB", target="<= 250 MB",
                       met=r["rss_peak_mb"] <= 250, higher_is_better=False),
            ]
        result.ok = all(result.details[k].get("complete", True) for k in result.details if k.startswith("hub_"))
        if not result.ok:
            result.error = "the hub did not store every heartbeat within the time bound"
    return result


def default_workers() -> list[int | None]:
    """0 (one in-process consumer) and 2 (both cores) when the hub has VH_INGEST_WORKERS."""
    from hub.settings import ENV

    return [0, 2] if "ingest_workers" in ENV else [None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--workers", default="", help="comma-separated VH_INGEST_WORKERS values to try")
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--quick", action="store_true", help="CI-sized: 50,000 messages, 5 s of latency probes")
    ap.add_argument("--no-baselines", action="store_true",
                    help="skip mosquitto_sub and InfluxDB's own /write rate (development loop)")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="record a py-spy profile (raw collapsed stacks) of the hub tree during the load")
    a = ap.parse_args(argv)
    workers: list[int | None] = [int(w) for w in a.workers.split(",") if w.strip()] or default_workers()
    messages, latency_s = (50_000, 5.0) if a.quick else (a.messages, a.latency_seconds)

    def go() -> BenchResult:
        r = run(messages, workers, latency_s, a.timeout, not a.no_baselines, a.profile)
        r.quick = a.quick
        return r

    return run_main("ingest", go)


if __name__ == "__main__":
    raise SystemExit(main())
