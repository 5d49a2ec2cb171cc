"""The demo's history: once per data directory, through the stores, a ledger with every kind
of problem (some overdue) and a ranking with data in this quarter and the one before."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.bootstrap import build_services
from hub.clock import ManualClock
from hub.problems.demo_seed import MARKER, Seeding, SeedingStopped, seed_demo_history
from hub.problems.model import Filters
from hub.settings import load_settings

pytestmark = pytest.mark.component
SH = ZoneInfo("Asia/Shanghai")


def township() -> dict[str, object]:
    villages = []
    for v in ("v01", "v02", "v03", "v04"):
        devices = [{"id": f"cam-{v}-{i}", "kind": "camera", "name": f"摄像头{i}"} for i in range(3)]
        devices += [{"id": f"spk-{v}-{i}", "kind": "speaker", "name": f"音箱{i}"} for i in range(2)]
        villages.append({"id": v, "name": f"{v}村", "groups": [{"id": f"{v}-g1", "name": "一组", "devices": devices}]})
    return {"township": {"name": "测试乡", "villages": villages}}


def test_demo_history_makes_the_ledger_and_the_ranking_meaningful(tmp_path: Path) -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=SH).timestamp()
    services = build_services(load_settings(data_dir=tmp_path, influx_url=None), ManualClock(now))
    try:
        services.registry.import_township(township())
        counts = seed_demo_history(services)
        assert counts["presence"] > 20 and counts["alerts"] > 0 and counts["problems"] >= 20
        assert counts["deliveries"] > 0
        assert seed_demo_history(services) == {}  # once per data directory
        assert services.problems is not None and services.rankings is not None
        problems, total = services.problems.query(Filters(), 500)
        assert total == counts["problems"]
        states = Counter(p.state for p in problems)
        assert states["closed"] > 0 and states["assigned"] > 0
        assert services.problems.query(Filters(overdue=True))[1] >= 1
        assert all(any(ph.stage == "before" for ph in p.photos) for p in problems)
        assert any(ph.stage == "after" for p in problems for ph in p.photos)
        assert services.alerts.open_alerts() == []  # history only: every seeded outage ended
        ranking = services.rankings.ranking(None)
        assert ranking["period"] == "2026-Q4"
        for item in ranking["items"]:
            assert item["breakdown"]["availability"]["detail"] != "无数据"
            assert item["breakdown"]["broadcast_delivery"]["detail"] != "无数据"
            assert item["previous_rank"] is not None
        assert len({i["score"] for i in ranking["items"]}) > 1
        assert {i["trend"] for i in ranking["items"]} & {"up", "down"}
    finally:
        for closing in (services.registry.close, services.alerts.close, services.tokens.close, services.store.close):
            with contextlib.suppress(Exception):
                closing()


def test_a_stopped_seeding_ends_at_its_next_step_writes_no_marker_and_seeds_next_time(tmp_path: Path) -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=SH).timestamp()
    services = build_services(load_settings(data_dir=tmp_path, influx_url=None), ManualClock(now))
    try:
        services.registry.import_township(township())
        stop = threading.Event()
        stop.set()
        with pytest.raises(SeedingStopped):
            seed_demo_history(services, stop=stop)
        assert not (tmp_path / MARKER).exists()
        # the demo's handle: stopped, its thread has ended (never left running into shutdown)
        seeding = Seeding(services).start()
        seeding.stop(timeout=10)
        assert not seeding.thread.is_alive()
        assert not (tmp_path / MARKER).exists()
        assert seed_demo_history(services)["problems"] >= 20  # the next start seeds it
        assert (tmp_path / MARKER).exists()
    finally:
        for closing in (services.registry.close, services.alerts.close, services.tokens.close, services.store.close):
            with contextlib.suppress(Exception):
                closing()
