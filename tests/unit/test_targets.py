"""hub.targets: the one target definition broadcasts and street lights share."""

from __future__ import annotations

import pytest

from hub.broadcasts.model import SpeakerRef
from hub.registry.model import Device
from hub.targets import Targets

LAMP_IN_LIJIA_G1 = Device("lt-1", "light", "路灯", "lijia", "lijia-g1")
SPEAKER_WITHOUT_PLACE = SpeakerRef("spk-9")


@pytest.mark.parametrize(("case", "targets", "device", "expected"), [
    ("all_reaches_a_device_without_village", Targets(all=True), SPEAKER_WITHOUT_PLACE, True),
    ("village_match", Targets(villages=("lijia",)), LAMP_IN_LIJIA_G1, True),
    ("group_match", Targets(groups=("lijia-g1",)), LAMP_IN_LIJIA_G1, True),
    ("device_match", Targets(devices=("spk-9",)), SPEAKER_WITHOUT_PLACE, True),
    ("other_village", Targets(villages=("wangzhuang",)), LAMP_IN_LIJIA_G1, False),
    ("nothing_named", Targets(), LAMP_IN_LIJIA_G1, False),
])
def test_targets_match_registry_devices_and_speakers_alike(
    case: str, targets: Targets, device: Device | SpeakerRef, expected: bool
) -> None:
    assert targets.matches(device) is expected, case


def test_wire_form_is_json_lists() -> None:
    t = Targets(villages=("lijia",), devices=("lt-1", "lt-2"))
    assert t.wire() == {"all": False, "villages": ["lijia"], "groups": [], "devices": ["lt-1", "lt-2"]}
