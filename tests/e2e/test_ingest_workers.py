"""VH_INGEST_WORKERS: heartbeats spread over worker processes by a shared subscription."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import raw_client
from tests.hubproc import InProcessHub, hub_settings
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.e2e


def test_worker_processes_store_every_heartbeat_and_feed_presence(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    db = "vh_workers"
    hub = InProcessHub(hub_settings(tmp_path, mosquitto.url, influxdb.url, influx_db=db, ingest_workers=2))
    hub.start()
    try:
        assert hub.hub is not None and hub.hub.pool is not None
        assert hub.hub.pool.ready.wait(60), "the workers did not subscribe"
        devices = [raw_client(mosquitto.port, f"cam-w{i}") for i in range(4)]
        for seq in range(50):
            for i, dev in enumerate(devices):
                dev.publish(f"vhub/v1/dev/cam-w{i}/heartbeat",
                            json.dumps({"kind": "camera", "seq": seq, "ts": time.time(), "fps": seq}), qos=1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = influxdb.rows("SELECT count(seq) FROM heartbeat WHERE \"device\" =~ /^cam-w[0-3]$/", db)
            if rows and rows[0]["count"] == 200:
                break
            time.sleep(0.1)
        assert rows and rows[0]["count"] == 200
        # the workers forward each batch's heartbeats to the hub process after storing them:
        # live state catches up with the store shortly after, so wait for it, not just for `online`
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            live, status, _ = hub.services.live.get("cam-w3")
            if status == "online" and live is not None and live.heartbeats >= 50:
                break
            time.sleep(0.05)
        live, status, _ = hub.services.live.get("cam-w3")
        assert status == "online" and live is not None and live.heartbeats == 50
        for dev in devices:
            dev.loop_stop()
    finally:
        hub.stop()
