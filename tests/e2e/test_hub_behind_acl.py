"""The hub itself behind the project's mosquitto.conf (per-listener auth, ACL, per-device
credentials made by hub.security exactly as an operator makes them; PROTOCOL §2):

- its ingest workers' `$share` subscriptions (VH_INGEST_WORKERS=2) are granted and carry every
  heartbeat of a device that connects over TLS with its own password;
- a broadcast's `play` reaches the speaker on its `cmd` topic and the speaker's acks come back;
- the hub's Will: SIGKILLed, the broker publishes `offline` on `hub/status` to the devices.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest

from tests.chaos.conftest import ChaosHub, wait_until
from tests.component.test_broker_security import HUB_USER, ROOT, Broker, project_broker
from tests.e2e.fielddev import FieldDevice
from tests.hubproc import InProcessHub, hub_settings
from tests.servers import InfluxServer

pytestmark = pytest.mark.e2e

SPEAKER, CAMERA = "spk-acl-01", "cam-acl-01"


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """The repository's mosquitto.conf, only localized (ports, paths), with credentials for the
    hub's user and two devices written by hub.security."""
    with project_broker("vh-acl-hub-", (SPEAKER, CAMERA)) as b:
        yield b


def hub_url(b: Broker) -> str:
    """The hub on the loopback listener with its own user (not anonymous: that is refused)."""
    return f"mqtt://{HUB_USER}:{quote(b.passwords[HUB_USER], safe='')}@127.0.0.1:{b.plain_port}"


def device(b: Broker, device_id: str, **kw: object) -> FieldDevice:
    """A device as in the field: over TLS with the development CA and its own password."""
    return FieldDevice(b.tls_port, device_id, username=device_id, password=b.passwords[device_id],
                       ca_file=b.ca, **kw)  # type: ignore[arg-type]


def test_share_workers_broadcast_and_acks_work_under_the_acl(
    tmp_path: Path, broker: Broker, influxdb: InfluxServer,
) -> None:
    db = "vh_behind_acl"
    hub = InProcessHub(hub_settings(tmp_path, hub_url(broker), influxdb.url, influx_db=db, ingest_workers=2))
    hub.start()
    cam = spk = None
    try:
        assert hub.hub is not None and hub.hub.pool is not None
        # ready = both worker processes connected as the hub's user and got their SUBACKs for
        # `$share/…/dev/+/heartbeat`. Mosquitto may still deny delivery by ACL (it grants, then
        # drops), so the proof is below: only the workers subscribe to heartbeats, and all arrive.
        assert hub.hub.pool.ready.wait(60), "the ingest workers did not subscribe"
        status, body = hub.api("PUT", f"/api/v1/devices/{SPEAKER}", {"kind": "speaker", "name": "ACL 喇叭"})
        assert status in (200, 201), body

        cam = device(broker, CAMERA)
        for seq in range(40):
            cam.publish("heartbeat", {"kind": "camera", "seq": seq, "ts": time.time(), "fps": 25}, qos=1)
        assert wait_until(lambda: influxdb.rows(
            f"SELECT count(seq) FROM heartbeat WHERE device='{CAMERA}'", db)[0]["count"] == 40, 30), \
            "heartbeats through the shared subscription were not all stored"

        spk = device(broker, SPEAKER)
        assert wait_until(lambda: hub.services.live.status(SPEAKER) == "online", 10)
        status, created = hub.api("POST", "/api/v1/broadcasts", {
            "title": "ACL 测试", "media": {"type": "tts", "text": "测试", "lang": "zh"},
            "targets": {"devices": [SPEAKER]}, "priority": 8, "volume": 50, "repeat": 1})
        assert status == 201, created
        play = spk.wait_message(lambda m: m.topic == spk.topic("cmd"))
        cmd = json.loads(play.payload)
        assert cmd["action"] == "play" and cmd["broadcast_id"] == created["id"]

        def state() -> str:
            _, b = hub.api("GET", f"/api/v1/broadcasts/{created['id']}")
            return str(b["occurrences"][-1]["deliveries"][0]["state"])

        assert wait_until(lambda: state() == "done", 15), state()  # received, playing, done came back
    finally:
        for d in (cam, spk):
            if d is not None:
                d.close()
        hub.stop()


def test_hub_will_publishes_offline_on_hub_status_when_sigkilled(
    tmp_path: Path, broker: Broker, influxdb: InfluxServer,
) -> None:
    hub = ChaosHub(tmp_path, hub_url(broker), influxdb.url, "vh_acl_will", extra_env={"VH_INGEST_WORKERS": "2"})
    spk = None
    try:
        hub.start()
        spk = device(broker, SPEAKER, watch_hub=True, acks=None)
        spk.wait_message(lambda m: m.topic == f"{ROOT}/hub/status" and m.payload == b"online" and m.retain)
        workers = psutil.Process(hub.pid).children(recursive=True)
        hub.kill()  # SIGKILL: no goodbye, the broker must publish the hub's Will
        try:
            will = spk.wait_message(lambda m: m.topic == f"{ROOT}/hub/status" and m.payload == b"offline")
        finally:
            for w in workers:  # orphaned by the SIGKILL: stopped by PID
                if w.is_running():
                    w.kill()
        assert will.qos == 1
        # and it is retained: a device connecting now learns the hub is down
        spk.close()
        spk = device(broker, SPEAKER, watch_hub=True, acks=None)
        retained = spk.wait_message(lambda m: m.topic == f"{ROOT}/hub/status")
        assert retained.payload == b"offline" and retained.retain
    finally:
        if spk is not None:
            spk.close()
        hub.stop()
