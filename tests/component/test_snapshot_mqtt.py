"""Snapshots over a real Mosquitto (raw publishes from a plain paho client) with metrics
written to a real InfluxDB: bad payloads rejected and counted without a full decode while
valid snapshots and heartbeats keep flowing; each health classification raised, then cleared."""

from __future__ import annotations

import struct
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import psutil
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub import metrics
from hub.clock import SystemClock
from hub.messages import InboundMessage, Point
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.service import SnapshotService
from hub.snapshots.storage import SnapshotStorage
from hub.snapshots.synthetic import Scene, encode, fault, render_scene
from hub.tsdb.lineprotocol import encode_point
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.component

ROOT = "vhub/v1"
DB = "snapshots_test"


def counter(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def connect(port: int, client_id: str) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


class Influx:
    """The point sink for the test: line protocol to InfluxDB 1.x `/write`."""

    def __init__(self, server: InfluxServer) -> None:
        self.server = server
        self._post("/query", {"q": f"CREATE DATABASE {DB}"})

    def _post(self, path: str, params: dict[str, str], body: bytes = b"") -> None:
        url = f"{self.server.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10):
            pass

    def emit(self, points: list[Point]) -> None:
        self._post("/write", {"db": DB, "precision": "ns"}, "\n".join(encode_point(p) for p in points).encode())


class Alerts:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.open: set[str] = set()

    def raise_alert(self, key: str, *, device_id: str | None, type: str, severity: str, message: str, ts: float) -> None:
        if key not in self.open:
            self.open.add(key)
            self.log.append(("raise", key))

    def clear_alert(self, key: str, ts: float) -> None:
        if key in self.open:
            self.open.discard(key)
            self.log.append(("clear", key))


class Bus:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        self.events.append(data)


class NoCommands:
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        raise AssertionError("these tests send no commands")


class HubSide:
    """A small paho subscriber standing in for the hub's pipeline: it hands snapshots to
    the service (on paho's network thread, as the real ingest would) and counts heartbeats."""

    def __init__(self, port: int, service: SnapshotService) -> None:
        self.service = service
        self.heartbeats = 0
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hub-test", protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"{ROOT}/dev/+/snapshot", 1), (f"{ROOT}/dev/+/heartbeat", 1)])
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: Any, m: paho.MQTTMessage) -> None:
        _, _, _, device, channel = m.topic.split("/")
        if channel == "heartbeat":
            self.heartbeats += 1
            return
        props = dict(getattr(m.properties, "UserProperty", None) or [])
        self.service.offer(InboundMessage(m.topic, device, channel, bytes(m.payload), m.qos, m.retain, m.mid, time.time(), props))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def rig(mosquitto: MosquittoServer, influxdb: InfluxServer, tmp_path: Path) -> Iterator[tuple[SnapshotService, Alerts, HubSide, paho.Client, Influx]]:
    influx, alerts = Influx(influxdb), Alerts()
    service = SnapshotService(
        storage=SnapshotStorage(tmp_path / "snapshots", history_min_interval_s=0), clock=SystemClock(),
        emit_points=influx.emit, alerts=alerts, events=Bus(), lookup=lambda d: ("v01", "g01"),
        publisher=NoCommands(),
        config=SnapshotConfig(workers=2),
    )
    service.start()
    hub = HubSide(mosquitto.port, service)
    device = connect(mosquitto.port, "cam-publisher")
    assert hub.subscribed.wait(10), "the hub side got no SUBACK"  # nothing published before it is lost
    yield service, alerts, hub, device, influx
    device.disconnect()
    device.loop_stop()
    hub.close()
    service.stop()


def wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def publish(client: paho.Client, device: str, payload: bytes, **props: str) -> None:
    properties = None
    if props:
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = list(props.items())
    client.publish(f"{ROOT}/dev/{device}/snapshot", payload, qos=1, properties=properties).wait_for_publish(10)


def bomb(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 256 + b"\xff\xd9"


def test_bad_payloads_are_rejected_and_counted_while_snapshots_and_heartbeats_flow(rig: Any) -> None:
    service, _alerts, hub, device, _influx = rig
    valid = encode(fault(render_scene(3), "ok"))
    publish(device, "cam-warm", valid)  # load OpenCV and the pool before the baseline
    assert wait_for(lambda: service.storage.latest("cam-warm") is not None) and service.wait_idle(10)
    truncated = valid[: len(valid) // 2]
    bad: dict[str, tuple[bytes, str]] = {
        "bomb_65500": (bomb(65500, 65500), "too_many_pixels"),
        "bomb_30000": (bomb(30000, 30000), "too_many_pixels"),
        "truncated": (truncated, "truncated"),
        "truncated_with_eoi": (truncated + b"\xff\xd9", "truncated"),
        "png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not_jpeg"),
        "tiff": (b"II*\x00\x08\x00\x00\x00" + b"\x00" * 100, "not_jpeg"),
        "gif": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "not_jpeg"),
        "zero": (b"", "empty"),
        "one": (b"\xff", "not_jpeg"),
        "random": (np.random.default_rng(5).integers(0, 256, 100_000, dtype=np.uint8).tobytes(), "not_jpeg"),
        "text_ffd8": (b"FFD8FFE000104A464946", "not_jpeg"),
        "20MB": (b"\xff\xd8\xff" + bytes(20 * 1024 * 1024), "too_large"),
    }
    reasons = {r for _, r in bad.values()}
    before = {r: counter("vh_snapshots_rejected_total", reason=r) for r in reasons}
    before_kind = {r: counter("vh_messages_rejected_total", kind="snapshot", reason=r) for r in reasons}
    analysed_before = counter("vh_snapshots_analysed_total")
    decodes_before = counter("vh_snapshot_analysis_seconds_count")

    proc = psutil.Process()
    baseline = proc.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    heartbeats = connect(hub.client._port, "cam-hb")  # heartbeats from another device meanwhile
    hb_before = hub.heartbeats
    try:
        for i, (name, (payload, _)) in enumerate(bad.items()):
            publish(device, f"cam-bad-{name}", payload)
            publish(device, f"cam-good-{i % 3}", valid)
            for _ in range(5):
                heartbeats.publish(f"{ROOT}/dev/cam-hb/heartbeat", b'{"kind":"camera"}', qos=1)
        assert wait_for(lambda: hub.heartbeats - hb_before == 5 * len(bad))
        assert wait_for(lambda: all(service.storage.latest(f"cam-good-{i}") for i in range(3)))
        assert service.wait_idle(20)
    finally:
        stop.set()
        sampler.join()
        heartbeats.disconnect()
        heartbeats.loop_stop()

    expected: dict[str, int] = {}
    for _, reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    got = {r: counter("vh_snapshots_rejected_total", reason=r) - before[r] for r in reasons}
    assert got == expected
    assert {r: counter("vh_messages_rejected_total", kind="snapshot", reason=r) - before_kind[r] for r in reasons} == expected
    # Only the valid snapshots and the one grey-filled truncated file reached a decoder.
    decodes = counter("vh_snapshot_analysis_seconds_count") - decodes_before
    analysed = counter("vh_snapshots_analysed_total") - analysed_before
    assert decodes - analysed == 1, (decodes, analysed, got)  # truncated_with_eoi: decoded at reduced size, then refused
    assert 3 <= analysed <= len(bad)  # latest-wins may merge frames of one camera
    grown_mb = (peak[0] - baseline) / 2**20
    print(f"peak RSS growth during the bad-payload burst: {grown_mb:.1f} MiB")
    assert grown_mb < 128, f"peak RSS grew by {grown_mb:.0f} MiB"  # a 65500² decode would need 12 GiB
    for name in bad:
        assert service.storage.latest(f"cam-bad-{name}") is None


SCENES: list[tuple[Scene, str]] = [("dark", "dark"), ("blurred", "blurred"), ("covered", "covered"), ("moved", "moved")]


def frames_for(condition: str, raise_after: int) -> list[bytes]:
    base = render_scene(11)
    ok = [encode(fault(base, "ok", frame=i)) for i in range(4)]
    if condition == "frozen":
        bad = [encode(fault(base, "ok", frame=50))] * (raise_after + 1)
    else:
        bad = [encode(fault(base, condition, frame=50 + i)) for i in range(raise_after)]  # type: ignore[arg-type]
    back = [encode(fault(base, "ok", frame=80 + i)) for i in range(3)]
    return ok + bad + back


NOON = 1_795_924_800.0  # 2026-11-29 12:00 at UTC+8: daylight in the simulator
NIGHT = NOON + 12 * 3600  # midnight: the simulated camera is in IR (grey) mode


def sim_frames_for(condition: str, raise_after: int, cam: str, t0: float) -> list[bytes]:
    """The device simulator's own renderer and fault effects (no code shared with the hub)."""
    from device_sim.scene import Effects, SceneRenderer

    r = SceneRenderer(cam)
    fault_fx = {"dark": Effects(dark=True), "blurred": Effects(blurred=True), "covered": Effects(covered=True),
                "moved": Effects(moved_px=240), "frozen": Effects(frozen=True)}[condition]
    n_bad = raise_after + 1 if condition == "frozen" else raise_after
    plan = [Effects()] * 4 + [fault_fx] * n_bad + [Effects()] * 3
    return [r.snapshot(t0 + 60 * i, fx) for i, fx in enumerate(plan)]


CASES = [(c, "synthetic") for c in ("dark", "blurred", "covered", "moved", "frozen")] + [
    (c, f"simulator-{tod}") for tod in ("noon", "night") for c in ("dark", "blurred", "covered", "moved", "frozen")
]


@pytest.mark.parametrize(("condition", "source"), CASES)
def test_each_health_condition_is_raised_then_cleared_from_raw_jpeg(
    rig: Any, influxdb: InfluxServer, condition: str, source: str
) -> None:
    service, alerts, _hub, device, _influx = rig
    cam = f"cam-{condition}-{source}"
    t = service.config.thresholds
    if source == "synthetic":
        frames = frames_for(condition, t.raise_after)
    else:
        frames = sim_frames_for(condition, t.raise_after, cam, NOON if source.endswith("noon") else NIGHT)
    healths = []
    for i, frame in enumerate(frames):
        publish(device, cam, frame, ts=f"{time.time():.3f}", trigger="schedule")
        n = i + 1
        assert wait_for(lambda: len(service.storage.history(cam)) == n), f"frame {i} not analysed"  # noqa: B023
        healths.append(service.camera_health(cam)["health"])  # type: ignore[index]
    assert service.wait_idle(10)  # the last point is written after the files
    key = f"camera:{cam}:{condition}"
    assert [e for e in alerts.log if e[1] == key] == [("raise", key), ("clear", key)]
    assert condition in healths and healths[-1] == "ok"
    rows = influxdb.rows(f"SELECT health, width, brightness, village, village_group FROM snapshot WHERE device = '{cam}'", db=DB)
    assert len(rows) == len(healths) and [r["health"] for r in rows] == healths
    assert rows[0]["width"] in (1920, 1280) and rows[0]["village"] == "v01" and rows[0]["village_group"] == "g01"
