"""Chaos fixtures: the hub as a real child process (`python -m hub serve`) on real Mosquitto and
InfluxDB, a QoS 1 publisher of seq-numbered heartbeats that remembers what the broker
acknowledged, and the accounting invariant read from /metrics."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from tests.hubproc import HubProcess, http, hub_settings
from tests.servers import InfluxServer

KINDS = ("heartbeat", "status", "event", "ack", "snapshot")


class ChaosHub(HubProcess):
    """HubProcess that also passes the database name and any extra VH_* variables."""

    def __init__(self, tmp: Path, mqtt_url: str, influx_url: str | None, db: str,
                 extra_env: dict[str, str] | None = None, data_dir: Path | None = None) -> None:
        settings = hub_settings(tmp, mqtt_url, influx_url, influx_db=db)
        if data_dir is not None:
            settings = settings.model_copy(update={"data_dir": data_dir})
        super().__init__(settings, tmp / "hub.log")
        self.extra_env = extra_env or {}

    def env(self) -> dict[str, str]:
        env = super().env()
        env["VH_INFLUX_DB"] = self.settings.influx.db
        env.update(self.extra_env)
        return env

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self) -> dict[str, float]:
        return scrape(self.url)

    def alerts(self) -> list[dict[str, Any]]:
        status, body = http("GET", self.url + "/api/v1/alerts")
        assert status == 200, body
        return list(body["items"])

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = float(s.value)
    return out


def metric(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for key, v in samples.items()
               if key.partition("{")[0] == name and all(w in key for w in want))


def accounting(samples: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per message kind, the parts of the invariant documented in hub/metrics.py (issue 8 item 4):
    received = rejected + dropped + accepted, and for the kinds stored as one point each
    (heartbeat, event) accepted = points stored + spooled + refused + dropped of that measurement."""
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        parts = {part: metric(samples, f"vh_messages_{part}_total", kind=kind)
                 for part in ("received", "rejected", "dropped", "accepted")}
        if kind == "snapshot":
            parts["accepted"] = (metric(samples, "vh_snapshots_analysed_total")
                                 + metric(samples, "vh_snapshots_pending"))
        if kind in ("heartbeat", "event"):
            parts["points"] = sum(metric(samples, name, measurement=kind) for name in (
                "vh_points_stored_total", "vh_points_spooled", "vh_points_refused_total",
                "vh_points_dropped_total"))
        out[kind] = parts
    return out


def _broken(parts: dict[str, float]) -> bool:
    if parts["received"] != parts["rejected"] + parts["dropped"] + parts["accepted"]:
        return True
    return "points" in parts and parts["accepted"] != parts["points"]


def accounting_problems(samples: dict[str, float]) -> list[str]:
    """What keeps `samples` from proving the invariant: nothing exported or nothing received
    counts as a problem (an empty scrape must not pass), then every kind whose parts disagree."""
    if not any(k.startswith("vh_messages_accepted_total") for k in samples):
        return ["no vh_messages_accepted_total exported: the invariant cannot be read"]
    acc = accounting(samples)
    if not any(parts["received"] > 0 for parts in acc.values()):
        return ["vh_messages_received_total is 0 for every kind: nothing to account for"]
    return [f"{kind}: {json.dumps(parts)}" for kind, parts in acc.items() if _broken(parts)]


def assert_accounting(hub: ChaosHub, timeout: float = 10.0) -> dict[str, dict[str, float]]:
    """The accounting invariant holds per kind once the hub has settled (read from /metrics).
    Fails when the hub exports no accounting at all or has received nothing."""
    deadline = time.monotonic() + timeout
    while True:
        samples = hub.metrics()
        problems = accounting_problems(samples)
        if not problems:
            return accounting(samples)
        if time.monotonic() > deadline:
            raise AssertionError("accounting invariant not shown: " + "; ".join(problems))
        time.sleep(0.2)


class SeqPublisher:
    """Publishes heartbeats with seq 0..n-1 for each device at `rate` msg/s, QoS 1, persistent
    session (clean_session false), auto-reconnecting; `acked()` is what the broker PUBACKed."""

    def __init__(self, port: int, devices: list[str], client_id: str) -> None:
        self.devices = devices
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv311, clean_session=False)
        self.client.reconnect_delay_set(1, 2)
        self.client.max_inflight_messages_set(200)
        self._mids: dict[int, tuple[str, int]] = {}
        self._acked_mids: set[int] = set()
        self.client.on_publish = lambda c, u, mid, rc, props: self._acked_mids.add(mid)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.published: list[tuple[str, int]] = []
        self._thread: threading.Thread | None = None

    def publish(self, device: str, seq: int) -> None:
        payload = json.dumps({"kind": "camera", "seq": seq, "ts": round(time.time(), 3) + seq * 1e-3,
                              "interval_s": 30, "fps": 25.0, "temp_c": 40.5}).encode()
        info = self.client.publish(f"vhub/v1/dev/{device}/heartbeat", payload, qos=1)
        self._mids[info.mid] = (device, seq)
        self.published.append((device, seq))

    def start(self, per_device: int, rate: float) -> SeqPublisher:
        assert per_device * len(self.devices) < 60_000, "mids must not wrap"

        def run() -> None:
            t0 = time.monotonic()
            i = 0
            for seq in range(per_device):
                for d in self.devices:
                    self.publish(d, seq)
                    i += 1
                    ahead = i / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)

        self._thread = threading.Thread(target=run, name="seq-publisher", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 60.0) -> None:
        if self._thread:
            self._thread.join(timeout)

    def wait_acked(self, timeout: float = 30.0) -> set[tuple[str, int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.acked()) < len(self.published):
            time.sleep(0.05)
        return self.acked()

    def acked(self) -> set[tuple[str, int]]:
        return {key for mid, key in list(self._mids.items()) if mid in self._acked_mids}

    def stop(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


def stored_pairs(db: InfluxServer, database: str, prefix: str) -> list[tuple[str, int]]:
    """Every (device, seq) row of `heartbeat` for devices starting with `prefix` (duplicates kept)."""
    rows = db.rows(f"SELECT seq FROM heartbeat WHERE device =~ /^{prefix}/ GROUP BY device", database)
    return [(str(r["device"]), int(r["seq"])) for r in rows]  # type: ignore[call-overload]


def wait_until(fn: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if fn():
                return True
        time.sleep(every)
    return False


def wait_all_stored(db: InfluxServer, database: str, prefix: str, expected: set[tuple[str, int]],
                    timeout: float = 30.0) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []

    def done() -> bool:
        nonlocal rows
        rows = stored_pairs(db, database, prefix)
        return expected <= set(rows)

    wait_until(done, timeout, 0.25)
    return rows


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    return "chaos_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[list[ChaosHub]]:
    """Hubs started by a test are stopped by PID at the end, whatever happened."""
    started: list[ChaosHub] = []
    yield started
    for h in started:
        h.stop()
