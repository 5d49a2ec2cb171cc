"""History for `villagehub demo`, so the ledger and the ranking have something to show.

From the start of the previous quarter up to now, for every registered device of the demo
township: presence changes (outages) in the time-series store, the `offline` alerts those
outages raised (acknowledged in time, late or never), problems in every state (some
overdue) with synthetic before/after photos, and a daily broadcast's deliveries. Each
village has its own "diligence" per quarter, so the ranking differs between villages and
moves between the quarters (trend arrows).

Everything goes through the stores' public APIs, in a background thread while the demo
starts (about half a minute on a slow disk: every alert is its own SQLite commit), with an
AlertBook of its own that publishes nothing, so the wall screen's stream does not replay
history. Runs once per data directory (a marker file), deterministically (fixed seed).
Seeded rows are not in the audit log: nobody did them.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from hub.alerts import AlertBook
from hub.broadcasts.model import Delivery
from hub.broadcasts.store import BroadcastStore
from hub.clock import Clock
from hub.messages import Point
from hub.problems.model import Photo, Problem
from hub.problems.store import ProblemStore
from hub.rankings.periods import current
from hub.registry.store import Registry
from hub.settings import Settings
from hub.tsdb.base import TimeSeriesStore
from hub.tsdb.lineprotocol import encode_points

log = logging.getLogger(__name__)

MARKER = ".demo_history_seeded"
HOUR, DAY = 3600.0, 86400.0
TITLES: dict[str, list[str]] = {
    "environment": ["村口垃圾堆放未清运", "河道漂浮物较多", "房前屋后柴草乱堆", "废弃农膜随意丢弃", "墙面小广告未清理"],
    "sanitation": ["公厕卫生差，无人保洁", "垃圾桶满溢", "污水横流至路面", "集市散场后垃圾未清扫"],
    "safety": ["池塘边缺少防护栏", "电线私拉乱接", "危房无警示标志", "桥面护栏松动", "秸秆露天焚烧隐患"],
    "device_fault": ["摄像头画面模糊", "摄像头被遮挡", "广播音箱无声", "摄像头离线"],
    "other": ["村务公开栏未更新", "道路标识缺失"],
}
OWNERS = ["张建国", "李秀英", "王志强", "刘红梅", "陈国华", "杨丽", "赵军", "周海燕"]
NOTES = {"assigned": "请按期整改", "fixed": "已整改完毕，请验收", "verified": "现场核查通过", "closed": "销号",
         "rejected": "经核实不属实"}


class Services(Protocol):
    """What the seed uses of the hub's services (the `hub.services.Services` container has
    them); the seed does not import the container, which sits above the ledger."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def store(self) -> TimeSeriesStore: ...


@dataclass(frozen=True, slots=True)
class Diligence:
    """How well a village does in one quarter, 0 (poorly) … 1 (very well)."""

    uptime: float
    ack: float
    on_time: float
    delivery: float


class SeedingStopped(Exception):
    """The demo stopped before its history was complete (it is seeded again at the next start)."""


class Seeding:
    """`seed_demo_history` on a thread of its own (the demo starts it before it serves).
    `stop()` makes it end at its next step and waits for it: the demo's Ctrl-C must not leave it
    inside OpenCV (drawing the ledger's photos) while the interpreter shuts down, which aborts
    the process ("terminate called without an active exception")."""

    def __init__(self, services: Services) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(services,), name="demo-history", daemon=True)

    def start(self) -> Seeding:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _run(self, services: Services) -> None:
        try:
            seed_demo_history(services, stop=self._stop)
        except SeedingStopped:
            log.info("demo history: stopped before it was complete (seeded again at the next start)")
        except Exception:
            log.exception("demo history could not be seeded")


def start_seeding(services: Services) -> Seeding:
    """A started `Seeding`: stop it before the services it writes to."""
    return Seeding(services).start()


def seed_demo_history(services: Services, *, now: float | None = None, seed: int = 14,
                      stop: threading.Event | None = None) -> dict[str, int]:
    """Seed once per data directory; returns what was written (empty when it was there).
    Raises SeedingStopped, between two steps, once `stop` is set (the marker is not written)."""
    s = services.settings
    marker = Path(s.data_dir) / MARKER
    if marker.exists():
        return {}
    reg = services.registry
    alerts = AlertBook(Path(s.data_dir) / "hub.db", None,
                       village_of=lambda d: (dev.village if (dev := reg.get(d)) else None))
    try:
        return _seed(services, alerts, marker, now, seed, _checker(stop))
    finally:
        alerts.close()


def _checker(stop: threading.Event | None) -> Any:
    def check() -> None:
        if stop is not None and stop.is_set():
            raise SeedingStopped
    return check


def _seed(services: Services, alerts: AlertBook, marker: Path, now: float | None, seed: int,
          check: Any) -> dict[str, int]:
    s = services.settings
    now = services.clock.now() if now is None else now
    rng = random.Random(seed)
    cur = current("quarter", now, s.zone)
    start = cur.previous().start
    villages = [v.id for v in services.registry.villages()]
    quarters = [(start, cur.start), (cur.start, now)]
    diligence = {(v, q): Diligence(*(rng.uniform(0.35, 1.0) for _ in range(4))) for v in villages for q in range(2)}

    def quality(village: str | None, ts: float) -> Diligence:
        q = 0 if ts < cur.start else 1
        return diligence.get((village or "", q), Diligence(0.8, 0.8, 0.8, 0.8))

    counts = {"presence": 0, "alerts": 0, "problems": 0, "deliveries": 0}
    try:
        services.store.setup()
    except Exception as exc:
        log.warning("demo history: time-series store not ready (%s); no presence history", exc)
    lines: list[str] = []
    for dev in services.registry.devices():
        check()
        if not dev.village:
            continue
        tags = {"device": dev.id, "village": dev.village, "village_group": dev.group or "", "kind": dev.kind}
        points = [Point("presence", tags, {"online": True, "reason": "status"}, start - DAY)]
        t = start
        while True:
            d = quality(dev.village, t)
            t += rng.expovariate(1.0 / (DAY * (8.0 + 24.0 * d.uptime)))
            if t > now - 2 * HOUR:
                break
            length = min(rng.expovariate(1.0 / (HOUR * (1.0 + 30.0 * (1.0 - d.uptime)))), now - HOUR - t)
            back = t + max(300.0, length)
            points.append(Point("presence", tags, {"online": False, "reason": "timeout"}, t))
            points.append(Point("presence", tags, {"online": True, "reason": "heartbeat"}, back))
            _outage_alert(alerts, rng, dev.id, dev.name or dev.id, t, back, d, s.ranking.alarm_ack_limit_s)
            counts["alerts"] += 1
            t = back
        counts["presence"] += len(points)
        lines += encode_points(points)
    for i in range(0, len(lines), 5000):
        try:
            services.store.write_lines(lines[i:i + 5000])
        except Exception as exc:
            log.warning("demo history: presence not stored (%s)", exc)
            break
    counts["problems"] = _problems(services, rng, villages, start, now, quality, check)
    counts["deliveries"] = _broadcasts(services, rng, quarters, now, quality, check)
    marker.write_text("seeded\n")
    log.info("demo history seeded: %s", counts)
    return counts


def _outage_alert(alerts: AlertBook, rng: random.Random, device: str, name: str, down: float, up: float,
                  d: Diligence, limit_s: float) -> None:
    a = alerts.raise_alert(f"offline:{device}", device_id=device, type="offline", severity="warning",
                                    message=f"{name} 离线：心跳超时", ts=down)
    if a is None:
        return
    r = rng.random()
    if r < d.ack:
        alerts.acknowledge(a.id, rng.choice(OWNERS), down + rng.uniform(60, limit_s * 0.9))
    elif r < d.ack + (1 - d.ack) * 0.7:
        alerts.acknowledge(a.id, rng.choice(OWNERS), down + rng.uniform(limit_s * 1.2, limit_s * 8))
    alerts.clear_alert(f"offline:{device}", up)


def _problems(services: Services, rng: random.Random, villages: list[str], start: float, now: float,
              quality: Any, check: Any) -> int:
    s = services.settings
    store = ProblemStore(s.data_dir / "problems.db", s.data_dir / "problems")
    try:
        return _problems_into(store, services, rng, villages, start, now, quality, check)
    finally:
        store.close()


def _problems_into(store: ProblemStore, services: Services, rng: random.Random, villages: list[str], start: float,
                   now: float, quality: Any, check: Any) -> int:
    from hub.snapshots.synthetic import Scene, scene_jpeg

    s = services.settings
    cameras: dict[str, list[str]] = {}
    for dev in services.registry.devices(kind="camera"):
        if dev.village:
            cameras.setdefault(dev.village, []).append(dev.id)
    made = overdue = 0
    specs: list[tuple[float, str]] = []
    for v in villages:
        for _ in range(rng.randint(5, 9)):
            specs.append((rng.uniform(start, now - 6 * HOUR), v))
    specs.sort()
    for created, village in specs:
        check()
        d = quality(village, created)
        category = rng.choice(list(TITLES))
        cams = cameras.get(village, [])
        device = rng.choice(cams) if cams and (category == "device_fault" or rng.random() < 0.6) else None
        deadline = created + rng.choice([3, 5, 7, 10]) * DAY
        owner = rng.choice(OWNERS)
        where = services.registry.get(device) if device else None
        p = store.insert(Problem(
            id="", village=village, group=where.group if where else None, category=category,
            title=rng.choice(TITLES[category]), description="巡查中发现，需按期整改。", device_id=device,
            alert_key=None, owner=None, deadline=deadline, state="open", created_at=created,
            created_by=rng.choice(["值班员", "网格员", "巡查员"]), updated_at=created, closed_at=None,
        ), datetime.fromtimestamp(created, s.zone).strftime("%Y%m%d"), note="创建")
        made += 1
        scene: Scene = "covered" if category == "device_fault" else rng.choice(["ok", "dark", "blurred"])
        _photo(store, p.id, "before", device, created, scene_jpeg(scene, seed=made, width=480, height=270))
        steps = _plan(rng, created, deadline, now, d)
        if deadline < now < deadline + 10 * DAY and overdue < 5 and len(steps) > 1 and rng.random() < 0.6:
            steps = steps[:1]  # assigned, and the deadline passed: overdue
        if steps and steps[-1][0] == "assigned" and deadline < now:
            overdue += 1
        state = "open"
        for to, at in steps:
            store.transition(p.id, expected_state=state, to_state=to, ts=at, by=owner if to == "fixed" else "值班员",
                             note=NOTES.get(to, ""), owner=owner if to == "assigned" else None, deadline=None)
            state = to
            if to == "fixed":
                _photo(store, p.id, "after", device, at, scene_jpeg("ok", seed=made + 1000, width=480, height=270))
    return made


def _plan(rng: random.Random, created: float, deadline: float, now: float, d: Diligence) -> list[tuple[str, float]]:
    """The transitions a problem went through by `now`."""
    if rng.random() < 0.05:
        return [("rejected", created + rng.uniform(HOUR, DAY))]
    assigned = created + rng.uniform(0.5 * HOUR, 0.5 * DAY)
    on_time = rng.random() < d.on_time
    span = deadline - assigned
    fixed = assigned + (rng.uniform(0.3, 0.9) * span if on_time else span + rng.uniform(0.5, 6) * DAY)
    verified = fixed + rng.uniform(2 * HOUR, 0.1 * span if on_time else 2 * DAY)
    closed = verified + rng.uniform(HOUR, DAY)
    plan = [("assigned", assigned), ("fixed", fixed), ("verified", verified), ("closed", closed)]
    return [(to, at) for to, at in plan if at < now]


def _photo(store: ProblemStore, pid: str, stage: str, device: str | None, ts: float, data: bytes) -> None:
    store.add_photo(Photo(uuid.uuid4().hex[:16], pid, stage, "camera" if device else "upload", device, ts, ts,
                          "值班员", len(data)), data)


def _broadcasts(services: Services, rng: random.Random, quarters: list[tuple[float, float]], now: float,
                quality: Any, check: Any) -> int:
    speakers = [d for d in services.registry.devices(kind="speaker") if d.village]
    if not speakers:
        return 0
    store = BroadcastStore(services.settings.data_dir / "broadcasts.db")
    try:
        return _broadcasts_into(store, services, rng, quarters, now, quality, check, speakers)
    finally:
        store.close()


def _broadcasts_into(store: BroadcastStore, services: Services, rng: random.Random,
                     quarters: list[tuple[float, float]], now: float, quality: Any, check: Any,
                     speakers: list[Any]) -> int:
    first = quarters[0][0] + 7.5 * HOUR
    times = [t for t in (first + i * 2 * DAY for i in range(200)) if t < now - DAY]
    if not times:
        return 0
    spec: dict[str, Any] = {
        "title": "早间广播（历史）", "priority": 1, "volume": 60, "repeat": 1,
        "media": {"type": "tts", "text": "早上好，请注意防火防汛。", "lang": "zh"},
        "targets": {"all": True, "villages": [], "groups": [], "devices": []},
        "schedule": {"start": datetime.fromtimestamp(first, services.settings.zone).isoformat(),
                     "rrule": "FREQ=DAILY;INTERVAL=2", "tz": services.settings.tz},
        "quiet_hours": "postpone", "valid_for_s": 1800.0,
    }
    bid = "demo" + uuid.uuid4().hex[:12]
    store.insert_broadcast(id=bid, title=spec["title"], priority=1, spec=spec, created_at=first - DAY,
                           created_by="值班员", next_at=times[0])
    n = 0
    for i, at in enumerate(times):
        check()
        occ = f"{bid}-{i}"
        deliveries = []
        for spk in speakers:
            d = quality(spk.village, at)
            r = rng.random()
            state = "done" if r < 0.7 + 0.3 * d.delivery else rng.choice(["failed", "expired", "expired"])
            deliveries.append(Delivery(uuid.uuid4().hex, occ, bid, spk.id, spk.village or "", spk.group or "", 1,
                                       state, at, at + 1800, at, 1, at + 60, "" if state == "done" else "demo"))
        store.record_occurrence(broadcast_id=bid, occurrence_id=occ, nominal_at=at, fired_at=at, status="fired",
                                note="", deliveries=deliveries, next_at=times[i + 1] if i + 1 < len(times) else None,
                                expected_next_at=at)
        n += len(deliveries)
    return n
