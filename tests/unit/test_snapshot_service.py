"""SnapshotService without a broker: latest-wins slots, rejections, alerts, staleness, requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import metrics
from hub.clock import ManualClock
from hub.messages import InboundMessage, Point
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.health import Thresholds
from hub.snapshots.service import SnapshotService
from hub.snapshots.storage import SnapshotStorage
from hub.snapshots.synthetic import Scene, scene_jpeg

pytestmark = pytest.mark.unit


class Recorder:
    """Stands in for AlertBook, EventBus, the point sink and the MQTT publisher."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.alerts: list[tuple[str, str]] = []  # ("raise"|"clear", key)
        self.open: set[str] = set()
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[tuple[str, bytes]] = []
        self.on_publish: Any = None

    def emit(self, points: list[Point]) -> None:
        self.points.extend(points)

    def raise_alert(self, key: str, *, device_id: str | None, type: str, severity: str, message: str, ts: float) -> None:
        if key not in self.open:
            self.open.add(key)
            self.alerts.append(("raise", key))

    def clear_alert(self, key: str, ts: float) -> None:
        if key in self.open:
            self.open.discard(key)
            self.alerts.append(("clear", key))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        self.sent.append((topic, payload))
        if self.on_publish:
            self.on_publish(topic, payload)


class Events:
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        self.rec.events.append((type_, data))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def make(tmp_path: Path, clock: ManualClock, rec: Recorder, **cfg: Any) -> SnapshotService:
    return SnapshotService(
        storage=SnapshotStorage(tmp_path / "snapshots"), clock=clock, emit_points=rec.emit,
        alerts=rec, events=Events(rec), lookup=lambda d: ("v01", "g1") if d.startswith("cam") else None,
        publisher=rec, config=SnapshotConfig(workers=2, thresholds=Thresholds(raise_after=2, clear_after=1), **cfg),
    )


@pytest.fixture
def svc(tmp_path: Path, clock: ManualClock, rec: Recorder) -> Iterator[SnapshotService]:
    s = make(tmp_path, clock, rec)
    s.start()
    yield s
    s.stop()


def msg(device: str, payload: bytes, clock: ManualClock, **props: str) -> InboundMessage:
    return InboundMessage(f"vhub/v1/dev/{device}/snapshot", device, "snapshot", payload, 1, False, 0,
                          clock.now(), props)


def jpeg(scene: Scene = "ok", n: int = 0) -> bytes:
    return scene_jpeg(scene, frame=n, width=1280, height=720)


def counter(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_latest_wins_slot_keeps_one_pending_snapshot_per_camera(tmp_path: Path, clock: ManualClock, rec: Recorder) -> None:
    s = make(tmp_path, clock, rec)  # not started: nothing is taken from the slots
    before = counter("vh_snapshots_superseded_total")
    frames = [jpeg("ok", i) for i in range(5)]
    for f in frames:
        s.offer(msg("cam1", f, clock))
    s.offer(msg("cam2", frames[0], clock))
    assert counter("vh_snapshots_superseded_total") - before == 4
    assert counter("vh_snapshots_pending") == 2
    s.start()
    try:
        assert s.wait_idle(10)
    finally:
        s.stop()
    assert s.storage.latest("cam1") == frames[-1]
    assert sorted(p.tags["device"] for p in rec.points) == ["cam1", "cam2"]


def test_pending_bytes_are_capped_across_cameras(tmp_path: Path, clock: ManualClock, rec: Recorder) -> None:
    f = jpeg()
    s = make(tmp_path, clock, rec, max_pending_bytes=len(f) * 2)
    before = counter("vh_snapshots_rejected_total", reason="overloaded")
    for cam in ("cam1", "cam2", "cam3"):
        s.offer(msg(cam, f, clock))
    assert counter("vh_snapshots_rejected_total", reason="overloaded") - before == 1
    assert counter("vh_messages_rejected_total", kind="snapshot", reason="overloaded") >= 1


def test_rejection_is_counted_and_logged_once_per_minute(svc: SnapshotService, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    before = counter("vh_snapshots_rejected_total", reason="not_jpeg")
    for _ in range(5):
        svc.offer(msg("cam9", b"GIF89a....", clock))
    assert counter("vh_snapshots_rejected_total", reason="not_jpeg") - before == 5
    lines = [r for r in caplog.records if "cam9" in r.getMessage()]
    assert len(lines) == 1
    clock.advance(61)
    svc.offer(msg("cam9", b"GIF89a....", clock))
    assert "4 more" in [r for r in caplog.records if "cam9" in r.getMessage()][-1].getMessage()


def test_analysed_snapshot_is_stored_written_and_announced(svc: SnapshotService, clock: ManualClock, rec: Recorder) -> None:
    f = jpeg()
    svc.offer(msg("cam1", f, clock, ts=str(clock.now() - 5), trigger="motion"))
    assert svc.wait_idle(10)
    (p,) = rec.points
    assert p.measurement == "snapshot" and p.tags == {"device": "cam1", "village": "v01", "village_group": "g1"}
    assert p.time == clock.now() - 5
    assert p.fields["health"] == "ok" and p.fields["width"] == 1280 and p.fields["bytes"] == len(f)
    assert p.fields["trigger"] == "motion" and {"brightness", "sharpness", "contrast", "colourfulness"} <= set(p.fields)
    assert svc.storage.latest("cam1") == f and svc.storage.thumbnail("cam1")
    assert rec.events[-1][0] == "snapshot" and rec.events[-1][1]["url"] == "/api/v1/devices/cam1/thumbnail"


def test_unregistered_camera_gets_empty_village_tags(svc: SnapshotService, clock: ManualClock, rec: Recorder) -> None:
    svc.offer(msg("stranger", jpeg(), clock))
    assert svc.wait_idle(10)
    assert rec.points[0].tags == {"device": "stranger", "village": "", "village_group": ""}


def test_device_ts_far_from_hub_time_is_not_trusted(svc: SnapshotService, clock: ManualClock, rec: Recorder) -> None:
    svc.offer(msg("cam1", jpeg(), clock, ts="12345"))
    assert svc.wait_idle(10)
    assert rec.points[0].time == clock.now()


def test_dark_camera_alert_raises_and_clears(svc: SnapshotService, clock: ManualClock, rec: Recorder) -> None:
    for i, scene in enumerate(["ok", "ok", "dark", "dark", "ok"]):
        svc.offer(msg("cam1", jpeg(scene, i), clock))  # type: ignore[arg-type]
        assert svc.wait_idle(10)
    assert rec.alerts == [("raise", "camera:cam1:dark"), ("clear", "camera:cam1:dark")]
    assert [p.fields["health"] for p in rec.points] == ["ok", "ok", "ok", "dark", "ok"]


@pytest.mark.parametrize(
    ("cut", "reason"),
    [(lambda f: f[:400] + b"\xff\xd9", "undecodable"),  # header without a scan
     (lambda f: f[: len(f) // 3] + b"\xff\xd9", "truncated")],  # grey-filled by libjpeg
)
def test_body_that_does_not_decode_behind_a_valid_header_is_rejected(
    svc: SnapshotService, clock: ManualClock, rec: Recorder, cut: Any, reason: str
) -> None:
    before = counter("vh_snapshots_rejected_total", reason=reason)
    svc.offer(msg("cam1", cut(jpeg()), clock))
    assert svc.wait_idle(10)
    assert counter("vh_snapshots_rejected_total", reason=reason) - before == 1
    assert rec.points == [] and svc.storage.latest("cam1") is None


def test_camera_with_fresh_heartbeat_but_no_snapshots_is_stale(svc: SnapshotService, clock: ManualClock, rec: Recorder) -> None:
    svc.offer(msg("cam1", jpeg(), clock))
    assert svc.wait_idle(10)
    hb = {"cam1": clock.now(), "cam2": clock.now()}
    assert svc.check_staleness(clock.now(), hb.get, cameras=["cam2", "cam3"]) == []
    clock.advance(1000)
    hb["cam1"] = hb["cam2"] = clock.now() - 10
    assert svc.check_staleness(clock.now(), hb.get, cameras=["cam2", "cam3"]) == ["cam1", "cam2"]
    assert ("raise", "camera:cam1:stale") in rec.alerts and svc.camera_health("cam1")["stale"]  # type: ignore[index]
    svc.offer(msg("cam1", jpeg("ok", 1), clock))
    assert svc.wait_idle(10)
    assert ("clear", "camera:cam1:stale") in rec.alerts
    assert svc.check_staleness(clock.now(), hb.get, cameras=["cam2", "cam3"]) == ["cam2"]


def test_snapshot_request_sends_the_command_and_waits_for_the_answer(svc: SnapshotService, clock: ManualClock, rec: Recorder) -> None:
    def camera(topic: str, payload: bytes) -> None:
        cmd = json.loads(payload)
        reply = msg("cam1", jpeg("ok", 3), clock, cmd_id=cmd["id"], trigger="command")
        threading.Timer(0.05, svc.offer, (reply,)).start()

    rec.on_publish = camera
    result = svc.request_snapshot("cam1", wait_s=5)
    topic, body = rec.sent[-1]
    cmd = json.loads(body)
    assert topic == "vhub/v1/dev/cam1/cmd"
    assert cmd["action"] == "snapshot" and cmd["id"] == result.command_id
    assert cmd["expires_at"] > cmd["ts"] == clock.now()
    assert result.state == "answered" and result.snapshot is not None and result.snapshot["health"] == "ok"


def test_snapshot_request_times_out_when_the_camera_is_silent(svc: SnapshotService) -> None:
    result = svc.request_snapshot("cam1", wait_s=0.2)
    assert result.state == "timeout"
    assert svc.request_snapshot("cam1").state == "sent"


def test_overrides_apply_to_one_camera(svc: SnapshotService) -> None:
    svc.set_thresholds("cam7", {"dark_brightness": 5})
    assert svc.thresholds_for("cam7").dark_brightness == 5
    assert svc.thresholds_for("cam8").dark_brightness == Thresholds().dark_brightness
    with pytest.raises(ValueError, match="unknown"):
        svc.set_thresholds("cam7", {"darkness": 5})


@pytest.mark.slow
def test_process_workers_give_the_same_result_as_threads(tmp_path: Path, clock: ManualClock, rec: Recorder) -> None:
    s = make(tmp_path, clock, rec, executor="process")
    s.start()
    try:
        s.offer(msg("cam1", jpeg("dark"), clock))
        assert s.wait_idle(60)
    finally:
        s.stop()
    assert rec.points[0].fields["brightness"] < 30 and s.storage.thumbnail("cam1")


def test_offer_never_raises(svc: SnapshotService, clock: ManualClock) -> None:
    bad = InboundMessage("t", "cam1", "snapshot", jpeg(), 1, False, 0, clock.now(), None)  # type: ignore[arg-type]
    before = counter("vh_snapshots_rejected_total", reason="analysis_error")
    svc.offer(bad)
    assert counter("vh_snapshots_rejected_total", reason="analysis_error") - before == 1
