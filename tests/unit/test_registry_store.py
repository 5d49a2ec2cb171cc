"""The registry store on a temporary SQLite file: writes, unregistered devices, atomic imports."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.registry import database as database_module
from hub.registry import snapshot as snapshot_module
from hub.registry import store as store_module
from hub.registry.model import Device, Group, Township, Village
from hub.registry.sample import synthetic_township
from hub.registry.store import Registry, RegistryError
from hub.registry.township_file import TownshipFileError

pytestmark = pytest.mark.unit

TOWN = Township(
    "示范乡",
    [Village("lijia", "李家村", 31.06, 114.39), Village("wangzhuang", "王庄村", 31.0, 114.4, "21:00-06:00")],
    [Group("lijia-g1", "lijia", "第一村民组"), Group("wangzhuang-g1", "wangzhuang", "第一村民组")],
    [
        Device("cam-1", "camera", "村口", "lijia", "lijia-g1", 31.061, 114.391, {"vendor": "dahua"},
               "rtsp://10.20.1.11:554/s"),
        Device("spk-1", "speaker", "文化广场", "lijia", None, 31.06, 114.39),
        Device("spk-2", "speaker", "晒谷场", "wangzhuang", "wangzhuang-g1"),
    ],
)


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = Registry(tmp_path / "registry.db")
    yield r
    r.close()


def reopen(r: Registry) -> Registry:
    r.close()
    return Registry(r.path)


def test_imported_township_is_readable_and_survives_a_reopen(reg: Registry) -> None:
    report = reg.import_township(TOWN)
    assert (report.villages_added, report.groups_added, report.devices_added) == (2, 2, 3)
    reg = reopen(reg)
    assert reg.get("cam-1") == TOWN.devices[0]
    assert [d.id for d in reg.devices(kind="speaker")] == ["spk-1", "spk-2"]
    assert [d.id for d in reg.devices(village="lijia")] == ["cam-1", "spk-1"]
    assert [d.id for d in reg.devices(group="wangzhuang-g1")] == ["spk-2"]
    assert reg.get_village("wangzhuang") == TOWN.villages[1]
    assert [g.id for g in reg.groups(village="lijia")] == ["lijia-g1"]
    reg.close()


def test_reimporting_the_same_township_changes_nothing(reg: Registry) -> None:
    reg.import_township(TOWN)
    report = reg.import_township(TOWN)
    assert (report.devices_added, report.devices_updated, report.devices_unchanged) == (0, 0, 3)
    assert (report.villages_updated, report.groups_updated) == (0, 0)


def test_a_yaml_shaped_mapping_imports_like_a_parsed_township(reg: Registry) -> None:
    reg.import_township({"township": {"devices": [{"id": "c9", "kind": "camera", "name": "路口"}]}})
    assert reg.get("c9") == Device("c9", "camera", "路口")
    with pytest.raises(TownshipFileError, match="kind: must be camera, speaker or light"):
        reg.import_township({"township": {"devices": [{"id": "c8", "kind": "toaster", "name": "x"}]}})


def test_export_reads_back_as_the_same_township(reg: Registry) -> None:
    reg.import_township(TOWN)
    reg.note_unregistered("stray", "camera")
    other = Registry(reg.path.with_name("other.db"))
    other.import_township(reg.export_township("示范乡"))
    assert other.township("示范乡") == reg.township("示范乡")
    assert other.get("stray") is None  # unregistered devices are not part of a township file
    other.close()


# ------------------------------------------------------------------ single edits


def test_device_with_a_group_and_no_village_gets_the_group_village(reg: Registry) -> None:
    reg.import_township(TOWN)
    dev = reg.upsert_device(Device("cam-2", "camera", "桥头", group="wangzhuang-g1"))
    assert dev.village == "wangzhuang" and reg.get("cam-2") == dev


def test_device_edit_naming_each_bad_field_changes_nothing(reg: Registry) -> None:
    reg.import_township(TOWN)
    version = reg.version
    with pytest.raises(RegistryError) as info:
        reg.upsert_device(Device("cam-1", "camera", "x", "wangzhuang", "lijia-g1", lat=95.0))
    assert info.value.errors == [
        "lat: must be between -90 and 90",
        "group: group 'lijia-g1' belongs to village 'lijia', not 'wangzhuang'",
    ]
    with pytest.raises(RegistryError, match="village: unknown village 'nowhere'"):
        reg.upsert_device(Device("cam-1", "camera", "x", "nowhere"))
    with pytest.raises(RegistryError, match="group: unknown group 'g9'"):
        reg.upsert_device(Device("cam-1", "camera", "x", group="g9"))
    assert reg.version == version and reg.get("cam-1") == TOWN.devices[0]


def test_group_cannot_move_village_while_it_has_devices(reg: Registry) -> None:
    reg.import_township(TOWN)
    with pytest.raises(RegistryError, match="village: group 'lijia-g1' still has devices in village 'lijia'"):
        reg.upsert_group(Group("lijia-g1", "wangzhuang", "第一村民组"))
    with pytest.raises(RegistryError, match="village: unknown village 'v9'"):
        reg.upsert_group(Group("g9", "v9", "x"))
    reg.upsert_village(Village("xintang", "新塘村", quiet_hours="22:00-05:30"))
    assert reg.upsert_group(Group("xintang-g1", "xintang", "第一村民组")) in reg.groups("xintang")
    with pytest.raises(RegistryError, match="quiet_hours: must be HH:MM-HH:MM"):
        reg.upsert_village(Village("xintang", "新塘村", quiet_hours="late"))


def test_deleted_device_is_gone_after_a_reopen(reg: Registry) -> None:
    reg.import_township(TOWN)
    assert reg.delete_device("spk-1") is True
    assert reg.delete_device("spk-1") is False
    reg = reopen(reg)
    assert reg.get("spk-1") is None and len(reg.devices()) == 2
    reg.close()


# ------------------------------------------------------------------ unregistered devices


def test_unregistered_device_is_kept_visible_and_survives_a_reopen(reg: Registry) -> None:
    dev = reg.note_unregistered("cam-stray", "camera")
    assert dev == Device("cam-stray", "camera", "cam-stray", registered=False)
    assert reg.devices(kind="camera") == [dev]
    reg = reopen(reg)
    assert reg.get("cam-stray") == dev
    reg.close()


def test_noting_a_known_device_is_idempotent_and_does_not_write(reg: Registry) -> None:
    reg.import_township(TOWN)
    first = reg.note_unregistered("stray", "speaker")
    version = reg.version
    assert reg.note_unregistered("stray", "speaker") is first
    assert reg.note_unregistered("cam-1", "camera") is reg.get("cam-1")  # registered stays registered
    assert reg.version == version


def test_unregistered_device_becomes_registered_by_edit_or_import(reg: Registry) -> None:
    reg.import_township(TOWN)
    reg.note_unregistered("cam-9", "camera")
    reg.note_unregistered("spk-9", "speaker")
    assert reg.upsert_device(Device("cam-9", "camera", "新桥", "lijia")).registered
    town = Township(None, TOWN.villages, TOWN.groups, [*TOWN.devices, Device("spk-9", "speaker", "新喇叭")])
    report = reg.import_township(town)
    assert report.devices_added == 1 and reg.get("spk-9") == Device("spk-9", "speaker", "新喇叭")


def test_unregistered_device_with_a_bad_id_is_refused(reg: Registry) -> None:
    with pytest.raises(RegistryError):
        reg.note_unregistered("bad/id", "camera")


# ------------------------------------------------------------------ imports are all or nothing


def test_replace_removes_what_the_file_omits_but_keeps_unregistered_devices(reg: Registry) -> None:
    reg.import_township(TOWN)
    reg.note_unregistered("stray", "camera")
    smaller = Township(None, TOWN.villages[:1], TOWN.groups[:1], TOWN.devices[:1])
    report = reg.import_township(smaller, replace=True)
    assert (report.villages_removed, report.groups_removed, report.devices_removed) == (1, 1, 2)
    assert sorted(d.id for d in reg.devices()) == ["cam-1", "stray"]
    reg = reopen(reg)
    assert sorted(d.id for d in reg.devices()) == ["cam-1", "stray"] and len(reg.villages()) == 1
    reg.close()


def test_merge_that_would_break_an_existing_device_changes_nothing(reg: Registry) -> None:
    reg.import_township(TOWN)
    version = reg.version
    moved = Township(None, TOWN.villages, [Group("lijia-g1", "wangzhuang", "第一村民组")], [])
    with pytest.raises(RegistryError) as info:
        reg.import_township(moved)
    assert info.value.errors == ["device 'cam-1': group 'lijia-g1' belongs to village 'wangzhuang', not 'lijia'"]
    assert reg.version == version and reg.get_group("lijia-g1") == TOWN.groups[0]


def test_import_failing_half_way_rolls_back_every_row(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    reg.import_township(TOWN)
    big = synthetic_township(3000, villages=3, groups_per_village=2)
    monkeypatch.setattr(database_module, "CHUNK", 500)
    version = reg.version

    def progress(done: int, total: int) -> None:
        if done > total // 2:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        reg.import_township(big, replace=True, progress=progress)
    assert reg.version == version  # the snapshot is untouched
    assert sorted(d.id for d in reg.devices()) == ["cam-1", "spk-1", "spk-2"]
    reg = reopen(reg)
    assert sorted(d.id for d in reg.devices()) == ["cam-1", "spk-1", "spk-2"]
    assert [v.id for v in reg.villages()] == ["lijia", "wangzhuang"]
    reg.close()


def test_progress_reaches_the_total(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "CHUNK", 100)
    seen: list[tuple[int, int]] = []
    reg.import_township(synthetic_township(1000, villages=5), progress=lambda d, t: seen.append((d, t)))
    assert len(seen) > 5 and seen[-1][0] == seen[-1][1] == 1000 + 5 + 50


# ------------------------------------------------------------------ concurrency and other processes


def test_readers_and_writers_in_threads_see_consistent_snapshots(reg: Registry) -> None:
    reg.import_township(TOWN)
    big = synthetic_township(2000, villages=4, groups_per_village=2)
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        last = 0
        try:
            while not stop.is_set():
                devices = reg.devices()
                assert len(devices) >= last  # only additions happen: never a torn, smaller view
                last = len(devices)
                assert all(reg.get(d.id) is not None for d in devices[-50:])
                assert all(d.kind == "camera" for d in reg.devices(kind="camera"))
                time.sleep(0.001)  # let the writers run: a spinning reader starves them of the GIL
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    def noter(n: int) -> None:
        try:
            for i in range(200):
                reg.note_unregistered(f"stray-{n}-{i}", "camera")
        except BaseException as exc:  # pragma: no cover
            failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    threads += [threading.Thread(target=noter, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for _ in range(3):
        reg.import_township(big)
    for t in threads[2:]:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads[2:]), "the writers did not finish"
    stop.set()
    for t in threads[:2]:
        t.join(timeout=30)
    assert failures == []
    assert len(reg.devices()) == 3 + 2000 + 600
    reg = reopen(reg)
    assert len(reg.devices()) == 3 + 2000 + 600
    reg.close()


def test_changes_made_by_another_process_are_picked_up(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "POLL_S", 0.05)
    reg.import_township(TOWN)
    assert reg.refresh() is False  # its own writes need no reload
    reg.start()
    try:
        cli = Registry(reg.path)  # e.g. `villagehub registry add-device` while the hub runs
        cli.upsert_device(Device("cam-new", "camera", "新路口", "lijia"))
        cli.close()
        deadline = time.monotonic() + 5
        while reg.get("cam-new") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reg.get("cam-new") == Device("cam-new", "camera", "新路口", "lijia")
    finally:
        reg.stop()


@pytest.mark.slow
def test_a_hundred_thousand_devices_import_in_seconds(reg: Registry) -> None:
    town = synthetic_township(100_000)
    started = time.perf_counter()
    report = reg.import_township(town)
    assert report.devices_added == 100_000
    assert time.perf_counter() - started < 10
    started = time.perf_counter()
    reg = reopen(reg)
    assert len(reg.devices()) == 100_000 and time.perf_counter() - started < 5
    reg.close()


def test_metrics_count_registered_and_unregistered_devices(reg: Registry) -> None:
    from hub.metrics import REGISTRY

    def gauge(kind: str, registered: str) -> float | None:
        return REGISTRY.get_sample_value("vh_registry_devices", {"kind": kind, "registered": registered})

    reg.import_township(TOWN)
    assert (gauge("camera", "true"), gauge("speaker", "true"), gauge("camera", "false")) == (1, 2, 0)
    reg.note_unregistered("stray", "camera")
    assert gauge("camera", "false") == 1
    reg.upsert_device(Device("stray", "camera", "新", "lijia"))
    assert (gauge("camera", "true"), gauge("camera", "false")) == (2, 0)
    reg.delete_device("spk-1")
    assert gauge("speaker", "true") == 1


def test_noting_a_device_another_process_registered_keeps_its_registration(reg: Registry) -> None:
    reg.import_township(TOWN)
    other = Registry(reg.path)  # e.g. the CLI, before this registry has polled for changes
    other.upsert_device(Device("cam-late", "camera", "新路口", "lijia"))
    other.close()
    dev = reg.note_unregistered("cam-late", "camera")
    assert dev == Device("cam-late", "camera", "新路口", "lijia") and reg.get("cam-late") == dev


def test_a_burst_of_new_devices_stays_consistent_across_the_fresh_fold(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "FRESH_MAX", 8)
    reg.import_township(TOWN)
    for i in range(20):  # folds into the base twice
        reg.note_unregistered(f"s{i}", "speaker")
    assert len(reg.devices()) == 23 and reg.get("s19") is not None and reg.get("s3") is not None
    reg.upsert_device(Device("s19", "speaker", "新", "lijia"))  # a fresh one edited
    assert reg.get("s19").registered and len(reg.devices(kind="speaker")) == 22  # type: ignore[union-attr]
    reg.note_unregistered("late", "camera")
    assert reg.delete_device("late") and reg.get("late") is None
    reg.note_unregistered("later", "camera")
    report = reg.import_township(TOWN)
    assert report.devices_unchanged == 3 and reg.get("later") is not None
    reg = reopen(reg)
    assert len(reg.devices()) == 24
    reg.close()


def test_dry_run_reports_the_changes_and_changes_nothing(reg: Registry) -> None:
    reg.import_township(TOWN)
    version = reg.version
    smaller = Township(None, TOWN.villages, TOWN.groups, TOWN.devices[:1])
    report = reg.import_township(smaller, replace=True, dry_run=True)
    assert (report.devices_removed, report.devices_unchanged) == (2, 1)
    assert reg.version == version and len(reg.devices()) == 3
    reg = reopen(reg)
    assert len(reg.devices()) == 3
    reg.close()


def test_a_write_after_an_unseen_outside_change_does_not_hide_it(reg: Registry) -> None:
    reg.import_township(TOWN)
    other = Registry(reg.path)
    other.upsert_device(Device("cam-cli", "camera", "CLI", "lijia"))
    other.close()
    reg.upsert_device(Device("cam-api", "camera", "API", "lijia"))  # before this registry polled
    assert reg.refresh() is True
    assert reg.get("cam-cli") is not None and reg.get("cam-api") is not None


def test_a_write_made_inconsistent_by_another_process_is_refused_cleanly(reg: Registry) -> None:
    reg.import_township(TOWN)
    other = Registry(reg.path)
    other.import_township(Township(None, TOWN.villages[1:], TOWN.groups[1:], TOWN.devices[2:]), replace=True)
    other.close()
    with pytest.raises(RegistryError, match="changed by another process"):
        reg.upsert_device(Device("cam-x", "camera", "x", "lijia"))  # lijia is gone
    assert reg.get_village("lijia") is None  # reloaded


def test_only_empty_groups_and_villages_can_be_deleted(reg: Registry) -> None:
    reg.import_township(TOWN)
    with pytest.raises(RegistryError, match="group: 'lijia-g1' still has 1 device"):
        reg.delete_group("lijia-g1")
    with pytest.raises(RegistryError, match="village: 'lijia' still has 3 group"):
        reg.delete_village("lijia")
    reg.delete_device("cam-1")
    assert reg.delete_group("lijia-g1") is True and reg.delete_group("lijia-g1") is False
    reg.delete_device("spk-1")
    assert reg.delete_village("lijia") is True and reg.delete_village("lijia") is False
    reg = reopen(reg)
    assert [v.id for v in reg.villages()] == ["wangzhuang"] and [g.id for g in reg.groups()] == ["wangzhuang-g1"]
    reg.close()
