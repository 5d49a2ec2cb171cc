"""The hub stopped under a QoS 1 stream: SIGTERM flushes and exits within 10 s; SIGKILL loses
nothing either (QoS 1 is acknowledged only once durable, the broker redelivers the rest to
the restarted hub's persistent session). Every (device, seq) ends in InfluxDB exactly once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.chaos.conftest import (
    ChaosHub,
    SeqPublisher,
    assert_accounting,
    stored_pairs,
    wait_all_stored,
    wait_until,
)
from tests.servers import InfluxServer, MosquittoServer

pytestmark = [pytest.mark.e2e]

DEVICES = [f"sig-{i:03d}" for i in range(20)]
PER_DEVICE = 150  # 3,000 heartbeats at 1,000/s: the stop lands mid-stream
RATE = 1000.0


def _exactly_once(rows: list[tuple[str, int]], expected: set[tuple[str, int]]) -> None:
    counts = Counter(rows)
    missing = expected - set(counts)
    dupes = {k: n for k, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} heartbeats lost, e.g. {sorted(missing)[:5]}"
    assert not dupes, f"duplicated: {list(dupes.items())[:5]}"


@pytest.mark.parametrize("sig", [
    pytest.param(signal.SIGTERM, id="sigterm"),
    pytest.param(signal.SIGKILL, id="sigkill"),
])
def test_hub_stopped_mid_stream_then_restarted_stores_every_device_seq_exactly_once(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, db_name: str,
    hubs: list[ChaosHub], sig: int,
) -> None:
    prefix = f"sig{int(sig)}-"
    devices = [prefix + d for d in DEVICES]
    hub = ChaosHub(tmp_path, mosquitto.url, influxdb.url, db_name)
    hubs.append(hub)
    hub.start()
    pub = SeqPublisher(mosquitto.port, devices, f"chaos-pub-{sig}-{mosquitto.port}")
    try:
        pub.start(PER_DEVICE, RATE)
        assert wait_until(lambda: len(stored_pairs(influxdb, db_name, prefix)) > 300, 15), hub.log_tail()
        assert hub.proc is not None
        t0 = time.monotonic()
        hub.proc.send_signal(sig)
        hub.proc.wait(15)
        exit_s = time.monotonic() - t0
        if sig == signal.SIGTERM:
            assert exit_s <= 10.0, f"SIGTERM took {exit_s:.1f} s"
            assert hub.proc.returncode == 0, hub.log_tail()
        pub.join(30)
        expected = pub.wait_acked(30)
        assert len(expected) == len(devices) * PER_DEVICE, "the broker did not acknowledge every publish"
        hub.start()  # same data dir, same client id: the persistent session is resumed
        rows = wait_all_stored(influxdb, db_name, prefix, expected, timeout=40)
        _exactly_once(rows, expected)
        assert_accounting(hub)
    finally:
        pub.stop()
