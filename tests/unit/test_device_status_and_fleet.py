"""hub.devices.status (parse_status) and hub.devices.fleet (count_fleet): pure, table-driven."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hub.devices.fleet import count_fleet
from hub.devices.status import parse_status
from hub.messages import Rejection


@pytest.mark.parametrize(("payload", "expected"), [
    (b"online", "online"),
    (b"offline", "offline"),
    (b"  online\n", "online"),
])
def test_status_online_or_offline_is_accepted(payload: bytes, expected: str) -> None:
    assert parse_status("cam-1", payload) == expected


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\xff\xfe", "not_utf8"),
    (b"ONLINE", "bad_value"),
    (b"", "bad_value"),
    (b'{"status": "online"}', "bad_value"),
])
def test_status_anything_else_is_a_status_rejection(payload: bytes, reason: str) -> None:
    r = parse_status("cam-1", payload)
    assert isinstance(r, Rejection)
    assert (r.kind, r.reason, r.device_id) == ("status", reason, "cam-1")


def test_bad_status_value_detail_is_bounded() -> None:
    r = parse_status("cam-1", b"x" * 100)
    assert isinstance(r, Rejection) and r.detail == repr("x" * 32)


@dataclass
class _Dev:
    id: str
    kind: str
    village: str | None = None


def test_fleet_counts_by_kind_status_and_village() -> None:
    devices = [_Dev("c1", "camera", "v1"), _Dev("c2", "camera", "v1"), _Dev("s1", "speaker", "v2"),
               _Dev("l1", "light", None), _Dev("c3", "camera", None)]
    statuses = {"c1": ("online", 1.0), "c2": ("offline", 2.0), "l1": ("online", 3.0),
                "ghost": ("online", 4.0)}  # heard of but not registered: not counted
    counts = count_fleet(devices, statuses)
    assert counts.kind("camera") == {"online": 1, "offline": 1, "unknown": 1, "total": 3}
    assert counts.kind("speaker") == {"online": 0, "offline": 0, "unknown": 1, "total": 1}
    assert counts.by_village["v1"]["camera"] == {"online": 1, "offline": 1, "unknown": 0, "total": 2}
    assert counts.by_village["v2"]["speaker"]["unknown"] == 1
    assert set(counts.by_village) == {"v1", "v2"}
    assert counts.summary() == {"cameras_online": 1, "cameras_total": 3, "speakers_online": 0,
                                "speakers_total": 1, "lights_online": 1, "lights_total": 1}


def test_fleet_counts_of_no_devices_are_zero() -> None:
    counts = count_fleet([], {})
    assert counts.summary() == dict.fromkeys(
        ["cameras_online", "cameras_total", "speakers_online", "speakers_total", "lights_online",
         "lights_total"], 0)


def test_the_metrics_gauges_and_the_history_counts_come_from_the_same_count() -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from hub import metrics
    from hub.bootstrap import fleet_counts

    devices = [_Dev("c1", "camera"), _Dev("c2", "camera"), _Dev("l1", "light")]
    services = SimpleNamespace(registry=SimpleNamespace(devices=lambda: devices),
                               live=SimpleNamespace(statuses=lambda: {"c1": ("online", 1.0), "l1": ("offline", 2.0)}))
    counts = fleet_counts(cast(Any, services))
    assert counts["cameras_online"] == 1 and counts["cameras_total"] == 2 and counts["lights_online"] == 0

    def gauge(kind: str, status: str) -> float:
        return float(metrics.devices_by_status.labels(kind=kind, status=status)._value.get())

    assert (gauge("camera", "online"), gauge("camera", "unknown"), gauge("light", "offline"),
            gauge("speaker", "online")) == (1, 1, 1, 0)
