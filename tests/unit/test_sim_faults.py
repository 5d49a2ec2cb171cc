"""Fault scenario files → a deterministic timeline (pure)."""

from __future__ import annotations

import pytest

from device_sim.faults import DeviceRef, FaultSwitch, ScenarioError, parse_scenario, plan

pytestmark = pytest.mark.unit

FLEET = [DeviceRef(f"cam-{i}", "camera", "v01" if i < 5 else "v02") for i in range(10)] + [
    DeviceRef(f"spk-{i}", "speaker", "v01") for i in range(4)
]


def test_scenario_yaml_with_devices_and_duration_gives_on_and_off_switches() -> None:
    s = parse_scenario("faults:\n  - {fault: dark, devices: [cam-1], at: 5, duration: 10}\n")
    assert plan(s, FLEET) == [FaultSwitch(5, "cam-1", "dark", True), FaultSwitch(15, "cam-1", "dark", False)]


def test_scenario_json_is_accepted_and_params_merge_with_defaults() -> None:
    s = parse_scenario('{"faults": [{"fault": "clock_skew", "devices": ["spk-0"], "params": {"skew_s": -600}}]}')
    [sw] = plan(s, FLEET)
    assert sw.params == {"skew_s": -600}
    [sw] = plan(parse_scenario('[{"fault": "moved", "devices": ["cam-0"]}]'), FLEET)
    assert sw.params == {"px": 60}


def test_share_picks_that_fraction_of_matching_devices_deterministically() -> None:
    s = parse_scenario("seed: 3\nfaults:\n  - {fault: blurred, share: 0.4, village: v01}\n")
    first = plan(s, FLEET)
    assert len(first) == 2 and all(sw.device_id in {f"cam-{i}" for i in range(5)} for sw in first)
    assert plan(s, FLEET) == first


def test_share_only_picks_devices_the_fault_applies_to() -> None:
    s = parse_scenario("faults:\n  - {fault: speaker_fault, share: 1.0}\n")
    assert {sw.device_id for sw in plan(s, FLEET)} == {f"spk-{i}" for i in range(4)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("faults: [{fault: melted, devices: [cam-1]}]", "unknown fault"),
        ("faults: [{fault: dark}]", "give `devices` or `share`"),
        ("faults: [{fault: dark, share: 2}]", "less than or equal"),
        ("faults: [{fault: dark, devices: [cam-1], params: {px: 3}}]", "unknown params"),
        ("faults: [{fault: dark, devices: [cam-1], at: -1}]", "greater than or equal"),
        ("faults: [{fault: dark, devices: [cam-1]", "not YAML"),
    ],
)
def test_invalid_scenario_names_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text)


def test_fault_for_the_wrong_kind_or_unknown_device_is_refused() -> None:
    with pytest.raises(ScenarioError, match="does not apply"):
        plan(parse_scenario("faults: [{fault: dark, devices: [spk-1]}]"), FLEET)
    with pytest.raises(ScenarioError, match="unknown device"):
        plan(parse_scenario("faults: [{fault: dark, devices: [cam-99]}]"), FLEET)
