"""Import planning (pure): what changes, what the report says, what would be inconsistent."""

from __future__ import annotations

import pytest

from hub.registry.merge import consistency, plan_import
from hub.registry.model import Device, Group, Township, Village

pytestmark = pytest.mark.unit

V1, V2 = Village("v1", "东村"), Village("v2", "西村")
G1 = Group("g1", "v1", "一组")
CAM = Device("c1", "camera", "村口", "v1", "g1")
SPK = Device("s1", "speaker", "广场", "v2")
STRAY = Device("x1", "camera", "x1", registered=False)
CURRENT = ({"v1": V1, "v2": V2}, {"g1": G1}, {"c1": CAM, "s1": SPK, "x1": STRAY})


def test_merge_counts_added_updated_and_unchanged() -> None:
    renamed = Device("s1", "speaker", "新广场", "v2")
    town = Township(None, [V1], [G1], [CAM, renamed, Device("c2", "camera", "桥头", "v1")])
    plan = plan_import(*CURRENT, town, replace=False)
    assert plan.errors == []
    r = plan.report
    assert (r.devices_added, r.devices_updated, r.devices_unchanged, r.devices_removed) == (1, 1, 1, 0)
    assert [d.id for d in plan.upsert_devices] == ["s1", "c2"]
    assert plan.upsert_villages == [] and plan.delete_devices == []
    assert set(plan.devices) == {"c1", "s1", "x1", "c2"}


def test_replace_deletes_what_is_missing_but_keeps_unregistered_devices() -> None:
    plan = plan_import(*CURRENT, Township(None, [V1], [G1], [CAM]), replace=True)
    assert plan.delete_devices == ["s1"] and plan.delete_villages == ["v2"] and plan.delete_groups == []
    assert set(plan.devices) == {"c1", "x1"}


def test_a_file_listing_an_unregistered_device_registers_it() -> None:
    plan = plan_import(*CURRENT, Township(None, [], [], [Device("x1", "camera", "新摄像头", registered=False)]),
                       replace=False)
    assert plan.devices["x1"].registered and plan.report.devices_added == 1


def test_replace_that_drops_a_village_still_in_use_is_refused() -> None:
    plan = plan_import(*CURRENT, Township(None, [V1], [], [CAM]), replace=True)
    assert plan.errors == ["device 'c1': unknown group 'g1'"]


@pytest.mark.parametrize(
    ("groups", "devices", "expected"),
    [
        ({"g1": Group("g1", "v9", "x")}, {}, ["group 'g1': unknown village 'v9'"]),
        ({}, {"d": Device("d", "camera", "x", "v9")}, ["device 'd': unknown village 'v9'"]),
        ({"g1": G1}, {"d": Device("d", "camera", "x", "v2", "g1")},
         ["device 'd': group 'g1' belongs to village 'v1', not 'v2'"]),
        ({"g1": G1}, {"d": Device("d", "camera", "x", None, "g1")},
         ["device 'd': group 'g1' belongs to village 'v1', not None"]),
    ],
)
def test_consistency_names_the_broken_reference(
    groups: dict[str, Group], devices: dict[str, Device], expected: list[str]
) -> None:
    assert consistency({"v1": V1, "v2": V2}, groups, devices) == expected
