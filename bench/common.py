"""What every benchmark shares: the result format, percentiles, real servers in temp dirs,
the hub as a child process, a sampler of a process tree's memory / fds / threads, /metrics.

Every figure is reported with a baseline measured in the same run and their ratio, so a
slower or faster machine moves both and the ratio stays meaningful.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from tests.servers import InfluxServer, MosquittoServer, free_port  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123"  # VH_BOOTSTRAP_TOKEN: >= 32 characters
# The bench broker: no queue or in-flight limits, so neither a slow consumer nor the
# publisher is throttled or dropped by the broker's defaults (the same for every consumer).
BROKER_CONFIG = "allow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\nmessage_size_limit 5242880\n"


@dataclass
class Figure:
    """One measured figure beside its same-run baseline."""

    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline: float | None = None
    target: str | None = None  # e.g. "ratio >= 0.5", "<= 20 ms"
    met: bool | None = None
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.value / self.baseline

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        return d


@dataclass
class BenchResult:
    name: str
    figures: list[Figure] = field(default_factory=list)
    # name -> [(seconds since start, value)]: throughput, rss_mb, fds, threads …
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # name -> {"p50": ms, "p90": ms, "p99": ms, "max": ms, "n": count}
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    error: str | None = None
    duration_s: float = 0.0
    quick: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "ok": self.ok, "error": self.error, "quick": self.quick,
            "duration_s": round(self.duration_s, 1),
            "figures": [f.to_dict() for f in self.figures],
            "series": {k: [[round(t, 2), round(v, 3)] for t, v in pts] for k, pts in self.series.items()},
            "latency": self.latency, "details": self.details,
        }

    def print_json(self) -> None:
        json.dump(self.to_dict(), sys.stdout, ensure_ascii=False)
        print()


def percentiles(values_s: list[float]) -> dict[str, float]:
    """Latency summary in milliseconds from values in seconds."""
    if not values_s:
        return {"n": 0}
    import numpy as np

    arr = np.asarray(values_s) * 1000.0
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {"n": len(values_s), "p50": round(float(p50), 2), "p90": round(float(p90), 2),
            "p99": round(float(p99), 2), "max": round(float(arr.max()), 2)}


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="vhbench-"))
    try:
        yield d
    finally:
        if not keep:
            import shutil

            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def servers(tmp: Path, influx: bool = True) -> Iterator[tuple[MosquittoServer, InfluxServer | None]]:
    """A Mosquitto (and an influxd) on free loopback ports in `tmp`, stopped by PID."""
    broker = MosquittoServer(tmp / "mosquitto", config=BROKER_CONFIG).start()
    db: InfluxServer | None = None
    try:
        if influx:
            db = InfluxServer(tmp / "influxdb").start()
        yield broker, db
    finally:
        if db is not None:
            db.stop()
        broker.stop()


# --- the hub as a child process --------------------------------------------------------------
class BenchHub:
    """`python -m hub serve` with VH_* settings, stopped by its PID."""

    def __init__(self, tmp: Path, mqtt_url: str, influx_url: str | None, **env: Any) -> None:
        import subprocess

        self._subprocess = subprocess
        self.port = free_port()
        self.data_dir = tmp / f"hubdata-{self.port}"
        self.log_path = tmp / f"hub-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VH_")}
        self.env.update({
            "VH_MQTT_URL": mqtt_url, "VH_DATA_DIR": str(self.data_dir), "VH_HTTP_PORT": str(self.port),
            "VH_BOOTSTRAP_TOKEN": ADMIN_TOKEN, "VH_MQTT_CLIENT_ID": f"villagehub-bench-{self.port}",
            "VH_LOG_LEVEL": "WARNING",
        })
        if influx_url:
            self.env["VH_INFLUX_URL"] = influx_url
        self.env.update({f"VH_{k.upper()}": str(v) for k, v in env.items()})
        self.proc: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def start(self, timeout: float = 60.0) -> BenchHub:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = self._subprocess.Popen([sys.executable, "-m", "hub", "serve"], env=self.env, cwd=ROOT,
                                           stdout=log, stderr=self._subprocess.STDOUT,
                                           stdin=self._subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hub exited:\n" + self.log_tail())
            if http_status(self.url + "/readyz") == 200:
                return self
            time.sleep(0.1)
        raise TimeoutError("hub not ready:\n" + self.log_tail())

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def terminate(self, timeout: float = 20.0) -> float:
        """SIGTERM; returns how long the hub took to exit (killed after `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except self._subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        return time.monotonic() - t0

    stop = terminate


def thread_cpu_s(pid: int, descendants: bool = True) -> dict[str, float]:
    """User + system CPU seconds per thread of a process tree, keyed "hub:<thread name>" (the
    process `pid`) or "worker:<thread name>" (its descendants); the hub names its threads in the
    OS (hub.threadnames), a process's main thread is "<role>:main". Threads of one name are summed."""
    out: dict[str, float] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for p in [root, *(root.children(recursive=True) if descendants else [])]:
            role = "hub" if p.pid == pid else "worker"
            with contextlib.suppress(psutil.Error):
                for t in p.threads():
                    name = "main"
                    if t.id != p.pid:
                        with contextlib.suppress(OSError):
                            name = Path(f"/proc/{p.pid}/task/{t.id}/comm").read_text().strip()
                    key = f"{role}:{name}"
                    out[key] = out.get(key, 0.0) + t.user_time + t.system_time
    return out


def threads_us_per_msg(before: dict[str, float], after: dict[str, float], messages: int) -> dict[str, float]:
    """µs of CPU per message for each thread name, largest first (threads under 0.05 µs left out)."""
    per = {k: (v - before.get(k, 0.0)) / max(messages, 1) * 1e6 for k, v in after.items()}
    return {k: round(v, 1) for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.05}


def http_status(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError):
        return 0


def scrape(url: str, timeout: float = 5.0) -> dict[str, float]:
    """/metrics as {'name{label="v",…}': value} (samples, labels sorted)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = float(s.value)
    return out


def metric_sum(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of every sample of `name` whose labels include `labels`."""
    total = 0.0
    want = [f'{k}="{v}"' for k, v in labels.items()]
    for key, v in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(w in rest for w in want):
            total += v
    return total


def influx_scalar(db: InfluxServer, q: str, database: str = "villagehub") -> float:
    try:
        series = db.query(q, database)
    except Exception:  # the database may not exist yet
        return 0.0
    if not series:
        return 0.0
    values = series[0]["values"]  # type: ignore[index]
    return float(values[0][1] or 0)  # type: ignore[index]


class Sampler:
    """Samples a process tree (RSS MB, fds, threads, CPU %) and optional probes every
    `every` seconds in a thread, until stop(). Series are (seconds since start, value)."""

    def __init__(self, pid: int | None, every: float = 0.5,
                 probes: dict[str, Callable[[], float]] | None = None) -> None:
        self.pid = pid
        self.every = every
        self.probes = probes or {}
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _tree(self) -> list[psutil.Process]:
        if self.pid is None:
            return []
        p = psutil.Process(self.pid)
        return [p, *p.children(recursive=True)]

    def sample(self) -> None:
        t = time.monotonic() - self.t0
        with contextlib.suppress(psutil.Error):
            procs = self._tree()
            if procs:
                self._add("rss_mb", t, sum(p.memory_info().rss for p in procs) / 2**20)
                self._add("fds", t, sum(p.num_fds() for p in procs))
                self._add("threads", t, sum(p.num_threads() for p in procs))
                self._add("cpu_s", t, sum(sum(p.cpu_times()[:2]) for p in procs))
        for name, fn in self.probes.items():
            with contextlib.suppress(Exception):
                self._add(name, t, float(fn()))

    def _add(self, name: str, t: float, v: float) -> None:
        self.series.setdefault(name, []).append((t, v))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> dict[str, list[tuple[float, float]]]:
        self._stop.set()
        self._thread.join(10)
        return self.series

    def peak(self, name: str) -> float:
        return max((v for _, v in self.series.get(name, [])), default=0.0)


def rate_series(counts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """A cumulative count series → a per-second rate series."""
    out = []
    for (t0, c0), (t1, c1) in itertools.pairwise(counts):
        if t1 > t0:
            out.append((t1, (c1 - c0) / (t1 - t0)))
    return out


def write_result(result: BenchResult, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    path.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    return path


def run_main(name: str, fn: Callable[[], BenchResult]) -> int:
    """Run a benchmark function; print its JSON even when it fails."""
    t0 = time.monotonic()
    try:
        result = fn()
    except Exception as exc:  # report the failure as a result
        import traceback

        traceback.print_exc()
        result = BenchResult(name, ok=False, error=f"{type(exc).__name__}: {exc}")
    result.duration_s = time.monotonic() - t0
    result.print_json()
    return 0 if result.ok else 1
