"""`villagehub serve` keeps its data directory private (issue 11 item 11): after a start with
a snapshot and heartbeats stored, every directory under VH_DATA_DIR is 0700 and every file 0600."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.hubproc import HubProcess, hub_settings
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component


def test_serve_creates_its_data_dir_databases_spool_and_snapshots_private(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    settings = hub_settings(tmp_path, mosquitto.url, None)
    data = settings.data_dir
    assert not data.exists()
    hub = HubProcess(settings, tmp_path / "hub.log")
    old = os.umask(0o022)  # an ordinary login umask: the hub must not rely on the caller's
    try:
        hub.start()
    finally:
        os.umask(old)
    try:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="perm-cam")
        c.connect("127.0.0.1", mosquitto.port)
        c.loop_start()
        c.publish("vhub/v1/dev/perm-cam/heartbeat", json.dumps({"kind": "camera", "seq": 1}), qos=1).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, body = hub_api(hub, "/api/v1/devices/perm-cam")
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, body
    finally:
        hub.stop()
    found = {p.relative_to(data).as_posix(): stat.S_IMODE(p.lstat().st_mode) for p in data.rglob("*")}
    assert {"registry.db", "hub.db"} <= set(found), found
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    loose = {name: oct(m) for name, m in found.items()
             if ((data / name).is_dir() and m != 0o700) or ((data / name).is_file() and m != 0o600)}
    assert not loose, loose


def hub_api(hub: HubProcess, path: str) -> tuple[int, object]:
    from tests.hubproc import ADMIN_TOKEN, http

    return http("GET", hub.url + path, token=ADMIN_TOKEN)
