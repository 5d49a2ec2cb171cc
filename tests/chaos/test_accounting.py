"""The accounting invariant of issue 8, read from /metrics after mixed traffic (valid and
malformed heartbeats, statuses, events): per message kind,
received = rejected + dropped + accepted, and accepted heartbeats/events = their points stored +
spooled + refused (+ dropped) — see hub/metrics.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.chaos.conftest import (
    ChaosHub,
    accounting_problems,
    assert_accounting,
    metric,
    wait_until,
)
from tests.e2e.conftest import raw_client
from tests.servers import InfluxServer, MosquittoServer

pytestmark = [pytest.mark.e2e]


def test_received_equals_stored_plus_rejected_plus_spooled_per_kind(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, db_name: str, hubs: list[ChaosHub],
) -> None:
    hub = ChaosHub(tmp_path, mosquitto.url, influxdb.url, db_name)
    hubs.append(hub)
    hub.start()
    c = raw_client(mosquitto.port, "acct-pub")
    try:
        sent = 0
        for i in range(200):
            dev = f"acct-{i % 10:02d}"
            c.publish(f"vhub/v1/dev/{dev}/heartbeat", json.dumps({"kind": "speaker", "seq": i // 10,
                                                                  "ts": time.time(), "volume": 50}), qos=1)
            sent += 1
        for bad in (b"not json", b"[1,2]", b'{"seq": 1}', b'{"kind": "toaster"}', b'{"kind": "camera", "fps": NaN}'):
            c.publish("vhub/v1/dev/acct-bad/heartbeat", bad, qos=1)
            sent += 1
        c.publish("vhub/v1/dev/acct-00/status", b"online", qos=1, retain=True)
        c.publish("vhub/v1/dev/acct-01/status", b"maybe", qos=1)
        c.publish("vhub/v1/dev/acct-02/event", json.dumps({"type": "motion", "ts": time.time()}), qos=1)
        c.publish("vhub/v1/dev/acct-03/event", b"\xff\xfe", qos=1)
        assert wait_until(lambda: metric(hub.metrics(), "vh_messages_received_total", kind="heartbeat") >= sent,
                          10), hub.log_tail()
        acc = assert_accounting(hub)
        assert acc["heartbeat"]["rejected"] >= 4
        assert acc["heartbeat"]["accepted"] == 200 and acc["heartbeat"]["points"] == 200
        assert acc["status"]["rejected"] >= 1 and acc["event"]["accepted"] >= 1
    finally:
        c.loop_stop()
        c.disconnect()


def test_accounting_check_fails_on_an_empty_scrape_and_on_a_broken_sum() -> None:
    """The checker itself can fail: a hub that exports nothing, or received nothing, or whose
    parts disagree, is not taken as proof."""
    assert accounting_problems({}) == ["no vh_messages_accepted_total exported: the invariant cannot be read"]
    idle = {'vh_messages_accepted_total{kind="heartbeat"}': 0.0}
    assert accounting_problems(idle) and "nothing to account for" in accounting_problems(idle)[0]
    good = {'vh_messages_received_total{kind="heartbeat"}': 5.0,
            'vh_messages_rejected_total{kind="heartbeat",reason="not_json"}': 1.0,
            'vh_messages_accepted_total{kind="heartbeat"}': 4.0,
            'vh_points_stored_total{measurement="heartbeat"}': 3.0,
            'vh_points_spooled{measurement="heartbeat"}': 1.0}
    assert accounting_problems(good) == []
    lost = dict(good, **{'vh_points_stored_total{measurement="heartbeat"}': 2.0})
    assert [p.split(":")[0] for p in accounting_problems(lost)] == ["heartbeat"]
    unexplained = dict(good, **{'vh_messages_received_total{kind="heartbeat"}': 6.0})
    assert [p.split(":")[0] for p in accounting_problems(unexplained)] == ["heartbeat"]
