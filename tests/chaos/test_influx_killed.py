"""influxd killed (a power cut of the store) during a QoS 1 stream, restarted a few seconds later:
the hub spools meanwhile and every (device, seq) ends in InfluxDB exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.chaos.conftest import (
    ChaosHub,
    SeqPublisher,
    assert_accounting,
    metric,
    stored_pairs,
    wait_all_stored,
    wait_until,
)
from tests.servers import InfluxServer, MosquittoServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # ~20 s


def test_influxd_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(
    tmp_path: Path, mosquitto: MosquittoServer, fresh_influxdb: InfluxServer, hubs: list[ChaosHub],
) -> None:
    db = "chaos_killed"
    hub = ChaosHub(tmp_path, mosquitto.url, fresh_influxdb.url, db)
    hubs.append(hub)
    hub.start()
    pub = SeqPublisher(mosquitto.port, [f"kill-{i:02d}" for i in range(10)], "chaos-kill-pub")
    try:
        pub.start(per_device=200, rate=400.0)  # 2,000 heartbeats over 5 s
        assert wait_until(lambda: len(stored_pairs(fresh_influxdb, db, "kill-")) > 200, 10), hub.log_tail()
        fresh_influxdb.kill()
        # the outage is real for the hub: it has failed writes and points wait in its spool
        assert wait_until(lambda: metric(hub.metrics(), "vh_store_up") == 0
                          and metric(hub.metrics(), "vh_points_spooled") > 0, 15), hub.log_tail()
        fresh_influxdb.restart()
        pub.join(30)
        expected = pub.wait_acked(30)
        assert len(expected) == 2000
        rows = wait_all_stored(fresh_influxdb, db, "kill-", expected, timeout=45)
        missing = expected - set(rows)
        assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:5]}\n{hub.log_tail()}"
        assert not [k for k, n in Counter(rows).items() if n > 1]
        assert hub.alive()
        assert_accounting(hub)
    finally:
        pub.stop()
