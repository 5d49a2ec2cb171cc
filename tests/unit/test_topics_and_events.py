"""Topic grammar (PROTOCOL §1–2) and device events (§5)."""

import pytest

from hub.devices.events import DeviceEvent, EventRejected, parse_event
from hub.topics import Topics, is_valid_id

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("good", ["cam-001", "A", "v01_g2", "x" * 64, "0abc"])
def test_valid_ids(good: str) -> None:
    assert is_valid_id(good)


@pytest.mark.parametrize("bad", ["", "-cam", "_x", "x" * 65, "cam 1", "cam/1", "#", "+", "cam\x00", "村1", None, 5])
def test_ids_with_wildcards_controls_or_bad_shape_are_refused(bad: object) -> None:
    assert not is_valid_id(bad)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("vhub/v1/dev/cam-001/heartbeat", ("cam-001", "heartbeat")),
        ("vhub/v1/dev/spk_2/ack", ("spk_2", "ack")),
        ("vhub/v1/dev/cam-001/heartbeat/extra", None),
        ("vhub/v1/dev/+/heartbeat", None),
        ("vhub/v1/dev/cam-001/unknown", None),
        ("vhub/v2/dev/cam-001/heartbeat", None),
        ("vhub/v1/hub/status", None),
    ],
)
def test_topic_parsing_takes_the_id_from_the_topic_only(topic: str, expected: tuple[str, str] | None) -> None:
    parsed = Topics("vhub/v1").parse(topic)
    assert (None if parsed is None else (parsed.device_id, parsed.channel)) == expected


def test_topics_are_built_under_a_configurable_root() -> None:
    t = Topics("site/a")
    assert t.cmd("spk-1") == "site/a/dev/spk-1/cmd" and t.hub_status == "site/a/hub/status"
    assert t.inbound_filter("status") == "site/a/dev/+/status"


def test_event_with_known_type_is_parsed() -> None:
    r = parse_event("cam-1", b'{"type": "tamper", "ts": 1764400000.5, "detail": {"zone": 2}}', 1764400001)
    assert isinstance(r, DeviceEvent) and r.known and r.time == 1764400000.5 and r.detail_json == '{"zone":2}'


def test_event_of_unknown_type_is_kept_as_it_is() -> None:
    r = parse_event("cam-1", b'{"type": "door_open"}', 10.0)
    assert isinstance(r, DeviceEvent) and not r.known and r.type == "door_open" and r.time == 10.0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"{", "not_json"), (b"[]", "not_object"), (b"{}", "bad_type"), (b'{"type": 3}', "bad_type"),
     (b'{"type": "x", "detail": [1]}', "bad_detail"), (b'{"type": "x"}' + b" " * 20000, "too_large")],
)
def test_malformed_event_is_rejected(payload: bytes, reason: str) -> None:
    r = parse_event("cam-1", payload, 10.0)
    assert isinstance(r, EventRejected) and r.reason == reason
