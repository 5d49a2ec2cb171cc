"""InfluxDB misbehaving behind a loopback proxy: slow writes, then 503 / 429 with Retry-After.
The hub keeps taking MQTT messages, honours Retry-After (the proxy counts its attempts: no tight
loop), spools meanwhile, and stores every (device, seq) exactly once when InfluxDB answers again."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
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
from tests.chaos.proxy import FaultMode, FaultProxy
from tests.servers import InfluxServer, MosquittoServer

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def proxy(influxdb: InfluxServer) -> Iterator[FaultProxy]:
    p = FaultProxy(influxdb.url).start()
    yield p
    p.stop()


def _assert_exactly_once(rows: list[tuple[str, int]], expected: set[tuple[str, int]]) -> None:
    missing = expected - set(rows)
    assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:5]}"
    dupes = [k for k, n in Counter(rows).items() if n > 1]
    assert not dupes, f"duplicated: {dupes[:5]}"


@pytest.mark.parametrize(("status", "retry_after"), [
    pytest.param(503, 2.0, id="503", marks=pytest.mark.slow),
    pytest.param(429, 1.0, id="429"),
])
def test_influx_answering_error_with_retry_after_is_retried_no_faster_than_it_asks(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, proxy: FaultProxy,
    db_name: str, hubs: list[ChaosHub], status: int, retry_after: float,
) -> None:
    prefix = f"ra{status}-"
    hub = ChaosHub(tmp_path, mosquitto.url, proxy.url, db_name)
    hubs.append(hub)
    hub.start()
    pub = SeqPublisher(mosquitto.port, [f"{prefix}{i:02d}" for i in range(10)], f"chaos-ra-{status}")
    try:
        pub.start(per_device=100, rate=200.0)  # 1,000 heartbeats over 5 s
        assert wait_until(lambda: len(stored_pairs(influxdb, db_name, prefix)) > 50, 10), hub.log_tail()
        fault_s = 4 * retry_after
        proxy.mode = FaultMode(status=status, retry_after=f"{retry_after:g}")
        t0 = time.monotonic()
        time.sleep(fault_s)
        t1 = time.monotonic()
        proxy.mode = FaultMode()
        attempts = proxy.stats.writes_between(t0, t1)
        # One attempt per Retry-After period, plus a little slack for writes already under way
        # and the direct path's single try; a tight loop would make hundreds.
        assert 1 <= attempts <= fault_s / retry_after + 3, f"{attempts} writes in {fault_s:.0f} s of {status}"
        pub.join(30)
        expected = pub.wait_acked(30)
        rows = wait_all_stored(influxdb, db_name, prefix, expected, timeout=30)
        _assert_exactly_once(rows, expected)
        assert hub.alive(), hub.log_tail()
        assert wait_until(lambda: metric(hub.metrics(), "vh_store_up") == 1, 10)
        assert_accounting(hub)
    finally:
        pub.stop()


def test_slow_influx_never_stalls_mqtt_intake_and_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, proxy: FaultProxy,
    db_name: str, hubs: list[ChaosHub],
) -> None:
    prefix = "slow-"
    proxy.mode = FaultMode(delay_s=0.5)  # every /write takes half a second more
    hub = ChaosHub(tmp_path, mosquitto.url, proxy.url, db_name)
    hubs.append(hub)
    hub.start()
    pub = SeqPublisher(mosquitto.port, [f"{prefix}{i:02d}" for i in range(10)], "chaos-slow")
    try:
        t0 = time.monotonic()
        pub.start(per_device=200, rate=500.0)  # 2,000 heartbeats over 4 s
        pub.join(30)
        expected = pub.wait_acked(30)
        assert len(expected) == 2000
        # the hub takes them off the broker at the publishing pace, not InfluxDB's
        assert wait_until(lambda: metric(hub.metrics(), "vh_messages_received_total", kind="heartbeat") >= 2000,
                          10), "MQTT intake stalled behind the slow store"
        rows = wait_all_stored(influxdb, db_name, prefix, expected, timeout=30)
        _assert_exactly_once(rows, expected)
        took = time.monotonic() - t0
        writes = len(proxy.stats.writes)
        assert writes < 2000 / 10, f"{writes} writes for 2,000 points: batching lost under latency"
        assert took < 30
        assert hub.alive()
        assert_accounting(hub)
    finally:
        pub.stop()
