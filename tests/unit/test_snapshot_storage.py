"""Snapshot files: latest + thumbnail per camera, a history ring bounded by count and age."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.snapshots.storage import SnapshotStorage, atomic_write

pytestmark = pytest.mark.unit

T0 = 1_764_400_000.0


def store(tmp_path: Path, **kw: float) -> SnapshotStorage:
    s = SnapshotStorage(tmp_path / "snapshots", **kw)  # type: ignore[arg-type]
    s.start()
    return s


def test_latest_and_thumbnail_are_replaced_by_each_save(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.save("cam1", b"jpeg-1", b"thumb-1", ts=T0, health="ok", meta={"width": 1})
    s.save("cam1", b"jpeg-2", b"thumb-2", ts=T0 + 1, health="dark", meta={"width": 2})
    assert s.latest("cam1") == b"jpeg-2" and s.thumbnail("cam1") == b"thumb-2"
    assert s.latest_meta("cam1") == {"width": 2, "ts": T0 + 1, "health": "dark"}
    assert s.latest("cam2") is None and s.devices() == ["cam1"]


def test_history_keeps_one_item_per_interval_plus_health_changes(tmp_path: Path) -> None:
    s = store(tmp_path, history_min_interval_s=60)
    for i in range(10):
        s.save("cam1", f"j{i}".encode(), b"t", ts=T0 + i * 10, health="ok", meta={})
    s.save("cam1", b"change", b"t", ts=T0 + 95, health="dark", meta={}, force_history=True)
    items = s.history("cam1")
    assert [it.ts for it in items] == [T0 + 95, T0 + 60, T0]
    assert items[0].health == "dark" and s.history_item("cam1", items[0].id) == b"change"


def test_history_is_bounded_by_count(tmp_path: Path) -> None:
    s = store(tmp_path, history_max_count=5, history_min_interval_s=0)
    for i in range(12):
        s.save("cam1", b"x", b"t", ts=T0 + i, health="ok", meta={})
    assert [it.ts for it in s.history("cam1")] == [T0 + i for i in range(11, 6, -1)]


def test_history_is_bounded_by_age(tmp_path: Path) -> None:
    s = store(tmp_path, history_max_age_s=3600, history_min_interval_s=0)
    s.save("cam1", b"old", b"t", ts=T0, health="ok", meta={})
    s.save("cam1", b"new", b"t", ts=T0 + 7200, health="ok", meta={})
    assert [it.ts for it in s.history("cam1")] == [T0 + 7200]


def test_history_interval_survives_a_restart(tmp_path: Path) -> None:
    s = store(tmp_path, history_min_interval_s=60)
    s.save("cam1", b"a", b"t", ts=T0, health="ok", meta={})
    again = store(tmp_path, history_min_interval_s=60)
    assert not again.save("cam1", b"b", b"t", ts=T0 + 10, health="ok", meta={})


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "x" * 65])
def test_a_device_id_never_becomes_a_path_outside_the_store(tmp_path: Path, bad: str) -> None:
    s = store(tmp_path)
    with pytest.raises(ValueError):
        s.latest(bad)


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "f.jpg"
    atomic_write(target, b"1")
    atomic_write(target, b"2")
    assert target.read_bytes() == b"2" and [p.name for p in tmp_path.iterdir()] == ["f.jpg"]
