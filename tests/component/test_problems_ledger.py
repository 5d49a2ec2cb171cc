"""The problem ledger over its real SQLite store, the real AlertBook, TokenStore (audit) and
SnapshotService (before photo from storage, fresh after photo through a snapshot request
answered by a stand-in camera), and the CSV/XLSX exports read back."""

from __future__ import annotations

import csv
import io
import stat
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from hub.alerts import AlertBook
from hub.auth import Principal, TokenStore
from hub.clock import ManualClock, SystemClock
from hub.messages import InboundMessage, Point
from hub.problems import export
from hub.problems.machine import TransitionForbidden
from hub.problems.model import Filters
from hub.problems.service import (
    Conflict,
    DeviceInfo,
    Invalid,
    NewProblem,
    PendingPhoto,
    Places,
    ProblemService,
)
from hub.problems.store import ProblemStore
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.service import SnapshotService
from hub.snapshots.storage import SnapshotStorage
from hub.snapshots.synthetic import scene_jpeg

pytestmark = pytest.mark.component
SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=SH).timestamp()
OP = Principal("王干事", "operator", "op0000000000")
DEVICES = {"cam-1": DeviceInfo("camera", "lijia", "lijia-g1"), "spk-1": DeviceInfo("speaker", "lijia", None)}
VILLAGES = {"lijia": "李家村", "wangzhuang": "王庄村"}
GROUPS = {"lijia-g1": "lijia"}


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def publish(self, type_: str, data: dict[str, Any], ts: float | None = None) -> None:
        self.items.append((type_, data))


class Camera:
    """Stands in for the MQTT publisher: answers a `snapshot` command like a camera would."""

    def __init__(self) -> None:
        self.snapshots: SnapshotService | None = None
        self.clock: ManualClock | None = None
        self.answer = True
        self.sent: list[bytes] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        import json

        self.sent.append(payload)
        cmd = json.loads(payload)
        device = topic.split("/")[3]
        if self.answer and self.snapshots is not None and self.clock is not None:
            frame = scene_jpeg("ok", frame=len(self.sent), width=640, height=360)
            self.snapshots.offer(InboundMessage(f"vhub/v1/dev/{device}/snapshot", device, "snapshot", frame, 1,
                                                False, 0, self.clock.now(), {"cmd_id": cmd["id"]}))


class Ledger:
    def __init__(self, tmp: Path) -> None:
        self.clock = ManualClock(T0)
        self.alerts = AlertBook(tmp / "hub.db")
        self.tokens = TokenStore(tmp / "hub.db", clock=SystemClock())
        self.events = Events()
        self.points: list[Point] = []
        self.camera = Camera()
        self.snapshots = SnapshotService(
            storage=SnapshotStorage(tmp / "snapshots"), clock=self.clock, emit_points=lambda p: None,
            alerts=self.alerts, events=self.events, lookup=lambda d: ("lijia", "lijia-g1"),
            publisher=self.camera, config=SnapshotConfig(workers=1),
        )
        self.camera.snapshots, self.camera.clock = self.snapshots, self.clock
        self.store = ProblemStore(tmp / "problems.db", tmp / "problems")
        self.svc = ProblemService(
            store=self.store, clock=self.clock, zone=SH,
            places=Places(DEVICES.get, VILLAGES.get, GROUPS.get), alerts=self.alerts, events=self.events,
            emit_points=self.points.extend, audit=self.tokens.audit, snapshots=self.snapshots, fresh_wait_s=10,
        )
        self.snapshots.start()
        self.svc.start()

    def stop(self) -> None:
        self.svc.stop()
        self.snapshots.stop()
        self.alerts.close()
        self.tokens.close()

    def store_camera_snapshot(self, camera: str = "cam-1") -> None:
        self.snapshots.offer(InboundMessage(f"vhub/v1/dev/{camera}/snapshot", camera, "snapshot",
                                            scene_jpeg("ok", width=640, height=360), 1, False, 0, self.clock.now()))
        assert self.snapshots.wait_idle(10)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(tmp_path)
    yield led
    led.stop()


def new(**kw: Any) -> NewProblem:
    base: dict[str, Any] = {"village": "lijia", "category": "environment", "title": "村口垃圾堆放"}
    return NewProblem(**{**base, **kw})


def test_ids_run_per_local_day_and_history_records_who_and_when(ledger: Ledger) -> None:
    a = ledger.svc.create(new(), OP)
    b = ledger.svc.create(new(title="路灯不亮"), OP)
    ledger.clock.set(datetime(2026, 12, 3, 0, 5, tzinfo=SH).timestamp())  # 16:05 UTC the day before
    c = ledger.svc.create(new(), OP)
    assert (a.id, b.id, c.id) == ("P20261202-0001", "P20261202-0002", "P20261203-0001")
    ledger.svc.delete(b.id, Principal("admin", "admin", "ad"))
    assert ledger.svc.create(new(), OP).id == "P20261203-0002"  # 02-0002 deleted: day 3 goes on
    assert [h.to_json() for h in a.history] == [{"ts": T0, "by": "王干事", "from": None, "to": "open", "note": "创建"}]


def test_the_full_flow_with_camera_photos_events_audit_and_history(ledger: Ledger) -> None:
    ledger.store_camera_snapshot()
    p = ledger.svc.create(new(village=None, device_id="cam-1", before_from_camera="cam-1", category="device_fault",
                              alert_key="camera:cam-1:covered"), OP)
    assert (p.village, p.group) == ("lijia", "lijia-g1")  # from the registry
    assert [(ph.stage, ph.source, ph.device_id) for ph in p.photos] == [("before", "camera", "cam-1")]
    before = ledger.svc.photo_path(p.id, p.photos[0].id).read_bytes()
    assert before == ledger.snapshots.storage.latest("cam-1")
    ledger.clock.advance(60)
    p = ledger.svc.transition(p.id, "assigned", OP, owner="李四", deadline=T0 + 86400, note="请三天内处理")
    ledger.clock.advance(60)
    p = ledger.svc.transition(p.id, "fixed", OP)
    got = ledger.svc.request_fresh(p.id, "after", "cam-1", OP)
    assert not isinstance(got, PendingPhoto) and got.stage == "after" and got.source == "camera"
    after = ledger.svc.photo_path(p.id, got.id).read_bytes()
    assert after != before and after[:2] == b"\xff\xd8"
    for to in ("verified", "closed"):
        ledger.clock.advance(60)
        p = ledger.svc.transition(p.id, to, OP)
    assert p.state == "closed" and p.closed_at == T0 + 240 and p.owner == "李四"
    assert [(h.from_state, h.to_state, h.by) for h in p.history] == [
        (None, "open", "王干事"), ("open", "assigned", "王干事"), ("assigned", "fixed", "王干事"),
        ("fixed", "verified", "王干事"), ("verified", "closed", "王干事")]
    assert p.history[1].note == "请三天内处理"
    actions = [e["action"] for e in reversed(ledger.tokens.audit_log())]
    assert actions == ["problem.photo", "problem.create", "problem.transition", "problem.transition",
                       "problem.photo.request", "problem.photo", "problem.transition", "problem.transition"]
    kinds = [d["action"] for t, d in ledger.events.items if t == "problem"]
    assert kinds == ["created", "transition", "transition", "photo", "transition", "transition"]
    # the wall screen marks the alarm row "filed" from the event alone
    assert {d["alert_key"] for t, d in ledger.events.items if t == "problem"} == {"camera:cam-1:covered"}
    with pytest.raises(Conflict):  # closed: no more photos
        ledger.svc.add_from_camera(p.id, "after", "cam-1", OP)
    with pytest.raises(TransitionForbidden):
        ledger.svc.transition(p.id, "assigned", OP)


def test_a_fresh_photo_that_comes_late_is_attached_when_it_arrives(ledger: Ledger) -> None:
    p = ledger.svc.create(new(), OP)
    ledger.camera.answer = False
    got = ledger.svc.request_fresh(p.id, "after", "cam-1", OP, wait_s=0.05)
    assert isinstance(got, PendingPhoto) and got.device_id == "cam-1"
    assert ledger.svc.pending_photos() == [got]
    done = threading.Event()
    ledger.snapshots.add_answer_listener(lambda *a: done.set())
    ledger.snapshots.offer(InboundMessage("vhub/v1/dev/cam-1/snapshot", "cam-1", "snapshot",
                                          scene_jpeg("ok", width=640, height=360), 1, False, 0, ledger.clock.now(),
                                          {"cmd_id": got.command_id}))
    assert done.wait(10) and ledger.snapshots.wait_idle(10)
    photos = ledger.svc.get(p.id).photos
    assert [(ph.stage, ph.device_id) for ph in photos] == [("after", "cam-1")]
    assert ledger.svc.pending_photos() == []


def test_bad_input_names_its_field(ledger: Ledger) -> None:
    cases = [
        (new(village="nowhere"), "village"), (new(village=None), "village"), (new(category="fun"), "category"),
        (new(group="wangzhuang-g9"), "group"), (new(device_id="cam-x"), "device_id"),
        (new(before_from_camera="spk-1"), "before_from_camera"),
        (new(before_from_camera="cam-1"), "before_from_camera"),  # no snapshot stored yet
        (new(deadline=float("inf")), "deadline"), (new(title="  "), "title"),
    ]
    for spec, field in cases:
        with pytest.raises(Invalid) as err:
            ledger.svc.create(spec, OP)
        assert err.value.field == field, spec
    assert ledger.svc.query(Filters(), 10)[1] == 0  # nothing half-created
    p = ledger.svc.create(new(), OP)
    with pytest.raises(Invalid, match="owner"):
        ledger.svc.transition(p.id, "assigned", OP)
    with pytest.raises(Invalid) as err:
        ledger.svc.add_upload(p.id, "after", b"GIF89a" + b"\0" * 100, OP)
    assert err.value.field == "file"
    with pytest.raises(Invalid) as err:
        ledger.svc.add_upload(p.id, "during", scene_jpeg("ok", width=64, height=64), OP)
    assert err.value.field == "stage"


def test_photo_files_are_private_and_go_with_their_problem(ledger: Ledger, tmp_path: Path) -> None:
    p = ledger.svc.create(new(), OP)
    photo = ledger.svc.add_upload(p.id, "before", scene_jpeg("ok", width=320, height=240), OP)
    path = ledger.svc.photo_path(p.id, photo.id)
    assert path.parent.parent == tmp_path / "problems"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    ledger.svc.delete(p.id, Principal("admin", "admin", "ad"))
    assert not path.exists() and not path.parent.exists()


def test_overdue_alerts_are_raised_in_chinese_and_cleared_when_the_problem_moves_on(ledger: Ledger) -> None:
    p = ledger.svc.create(new(owner="李四", deadline=T0 + 3600), OP)
    ledger.svc.sweep(ledger.clock.now())
    assert not ledger.alerts.is_open(f"problem:{p.id}:overdue")
    ledger.clock.advance(3601)
    ledger.svc.sweep(ledger.clock.now())
    alert = next(a for a in ledger.alerts.open_alerts() if a.key == f"problem:{p.id}:overdue")
    assert alert.type == "problem_overdue" and "超期" in alert.message and "李家村" in alert.message
    assert "李四" in alert.message and "2026-12-02 10:00" in alert.message
    assert ledger.svc.query(Filters(overdue=True))[1] == 1
    assert ledger.svc.get(p.id).to_json(ledger.clock.now())["overdue"] is True
    ledger.svc.transition(p.id, "assigned", OP)  # still overdue: assigned is still pending
    assert ledger.alerts.is_open(f"problem:{p.id}:overdue")
    ledger.svc.transition(p.id, "fixed", OP)
    assert not ledger.alerts.is_open(f"problem:{p.id}:overdue")
    assert ledger.svc.query(Filters(overdue=True))[1] == 0


def test_overdue_alerts_survive_a_restart_and_are_cleared_after_it(ledger: Ledger, tmp_path: Path) -> None:
    p = ledger.svc.create(new(owner="李四", deadline=T0 - 10), OP)
    ledger.svc.sweep(ledger.clock.now())
    assert ledger.alerts.is_open(f"problem:{p.id}:overdue")
    again = ProblemService(store=ProblemStore(tmp_path / "problems.db", tmp_path / "problems"), clock=ledger.clock,
                           zone=SH, places=Places(DEVICES.get, VILLAGES.get, GROUPS.get), alerts=ledger.alerts,
                           events=Events(), emit_points=lambda p: None, audit=ledger.tokens.audit)
    again.start()
    ledger.store.delete(p.id)  # gone behind the first service's back: the new one clears it on its sweep
    again.sweep(ledger.clock.now())
    assert not ledger.alerts.is_open(f"problem:{p.id}:overdue")


def test_counts_per_village_and_category_are_written_each_minute_and_after_a_change(ledger: Ledger) -> None:
    a = ledger.svc.create(new(deadline=T0 + 60), OP)
    ledger.svc.create(new(village="wangzhuang", category="safety"), OP)
    ledger.svc.sweep(ledger.clock.now())
    latest = {(p.tags["village"], p.tags["category"]): p.fields for p in ledger.points}
    assert latest == {("lijia", "environment"): {"open": 1, "overdue": 0, "closed": 0},
                      ("wangzhuang", "safety"): {"open": 1, "overdue": 0, "closed": 0}}
    n = len(ledger.points)
    ledger.clock.advance(10)
    ledger.svc.sweep(ledger.clock.now())
    assert len(ledger.points) == n  # nothing changed, not a minute yet
    ledger.clock.advance(55)  # a is overdue now
    ledger.svc.sweep(ledger.clock.now())
    assert {p.fields["overdue"] for p in ledger.points[n:] if p.tags["village"] == "lijia"} == {1}
    for to in ("assigned", "fixed", "verified", "closed"):
        ledger.svc.transition(a.id, to, OP, owner="张三")
    ledger.svc.sweep(ledger.clock.now())
    assert ledger.points[-2:][0].measurement == "problems"
    last = {(p.tags["village"], p.tags["category"]): p.fields for p in ledger.points}
    assert last[("lijia", "environment")] == {"open": 0, "overdue": 0, "closed": 1}


def test_csv_export_escapes_formulas_and_xlsx_reads_back_with_chinese_headers(ledger: Ledger) -> None:
    for cell in ("=1", "+A1", "-A1+1", "@A", "\t=1", "\r=1"):
        assert export.escape_cell(cell) == "'" + cell
    assert export.escape_cell("1=1") == "1=1" and export.escape_cell("") == ""
    assert export.escape_cell("-2") == "-2"  # a plain number is no formula
    evil = ["=HYPERLINK(\"http://x\")", "+A1", "-A1+1", "@SUM(A1)"]
    for title in evil:
        ledger.svc.create(new(title=title, description="=1+1", owner="@张三"), OP)
    ledger.svc.create(new(title="正常标题", description="\t=cmd|' /C calc'!A0"), OP)
    items, _ = ledger.svc.query(Filters(), 100)
    table = export.rows(items, ledger.clock.now(), SH, VILLAGES.get, lambda g: None)
    text = export.to_csv(table).decode("utf-8")
    assert text.startswith("\ufeff编号,村,")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["编号", "村", "村民组", "类别", "标题"]
    titles = sorted(r[4] for r in rows[1:])
    assert titles == sorted(["'" + t for t in evil] + ["正常标题"])
    assert {r[5] for r in rows[1:]} == {"'=1+1", "'\t=cmd|' /C calc'!A0"}
    assert {r[8] for r in rows[1:]} == {"'@张三", ""}
    assert {r[1] for r in rows[1:]} == {"李家村"} and {r[3] for r in rows[1:]} == {"人居环境"}
    wb = load_workbook(io.BytesIO(export.to_xlsx(table)))
    ws = wb.active
    assert ws is not None and ws.title == "整改台账"
    values = list(ws.iter_rows(values_only=True))
    assert values[0] == export.HEADERS
    cells = [ws.cell(row=r, column=5) for r in range(2, len(values) + 1)]
    assert all(c.data_type == "s" for c in cells)  # strings, never formulas
    assert {c.value for c in cells} >= {"=HYPERLINK(\"http://x\")", "+A1", "@SUM(A1)"}
    assert ws.cell(row=2, column=11).value == "待交办"
