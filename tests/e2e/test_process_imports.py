"""What the hub's processes load (issue 12: the process tree within 250 MB).

`villagehub serve` loads OpenCV and numpy (~55 MB) with the first snapshot it analyses, not at
start; an ingest worker process never loads them, nor pydantic (FastAPI's base). Checked on the
real processes: the shared objects mapped in /proc/PID/maps. Their threads carry their names in
the OS (`hub.threadnames`), so per-thread CPU can be read from /proc/PID/task."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.snapshots.synthetic import encode, render_scene
from tests.hubproc import HubProcess, http, hub_settings
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.e2e

OPENCV_NUMPY = ("cv2", "_multiarray_umath")  # OpenCV's and numpy's extension modules
PYDANTIC = ("_pydantic_core",)


class _HubWithOneWorker(HubProcess):
    def env(self) -> dict[str, str]:
        return {**super().env(), "VH_INGEST_WORKERS": "1"}


def loaded(pid: int, names: tuple[str, ...]) -> set[str]:
    """Which of `names` appear in the file names the process has mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {n for n in names if n in maps}


def thread_names(pid: int) -> set[str]:
    return {(task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_serving_hub_loads_opencv_with_the_first_snapshot_and_its_worker_never(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    settings = hub_settings(tmp_path, mosquitto.url, influxdb.url, influx_db="vh_process_imports")
    hub = _HubWithOneWorker(settings, tmp_path / "hub.log").start()
    dev = paho.Client(CallbackAPIVersion.VERSION2, client_id="cam-lazy", protocol=paho.MQTTv5)
    try:
        assert hub.proc is not None
        dev.connect("127.0.0.1", mosquitto.port)
        dev.loop_start()
        # heartbeats through the worker process (shared subscription) into the hub's live state;
        # sent until one arrives (the worker may not have subscribed yet when the hub is ready)
        seq = iter(range(1, 1000))

        def heartbeat_arrived() -> bool:
            status, body = http("GET", hub.url + "/api/v1/devices/cam-lazy")
            if status == 200 and body["heartbeats_received"] > 0:
                return True
            dev.publish("vhub/v1/dev/cam-lazy/heartbeat", json.dumps({"kind": "camera", "seq": next(seq)}), qos=1)
            time.sleep(0.2)
            return False

        wait_for(heartbeat_arrived, 60, "a heartbeat to reach the hub through its worker")
        workers = [p for p in psutil.Process(hub.proc.pid).children()
                   if "hub.ingest.workerproc" in " ".join(p.cmdline())]
        assert len(workers) == 1
        assert loaded(workers[0].pid, OPENCV_NUMPY + PYDANTIC) == set()
        assert loaded(hub.proc.pid, OPENCV_NUMPY) == set()
        assert {"ingest-fan-in-0", "tsdb-writer"} <= thread_names(hub.proc.pid)
        assert {"mqtt-rx", "ingest-0", "ingest-0-commit", "tsdb-writer"} <= thread_names(workers[0].pid)
        # `villagehub serve` settled its garbage collector once it served (hub.gcpolicy)
        status, text = http("GET", hub.url + "/metrics", token=None)
        frozen = [line for line in text.decode().splitlines() if line.startswith("vh_gc_frozen_objects ")]
        assert status == 200 and len(frozen) == 1 and float(frozen[0].split()[1]) > 10_000

        dev.publish("vhub/v1/dev/cam-lazy/snapshot", encode(render_scene(seed=1, width=1280, height=720)), qos=1)
        wait_for(lambda: http("GET", hub.url + "/api/v1/devices/cam-lazy/thumbnail")[0] == 200, 30,
                 "the first snapshot to be analysed")
        status, health = http("GET", hub.url + "/api/v1/devices/cam-lazy/camera-health")
        assert status == 200 and health["health"] == "ok" and health["last"]["width"] == 1280
        assert loaded(hub.proc.pid, OPENCV_NUMPY) == set(OPENCV_NUMPY)
        assert loaded(workers[0].pid, OPENCV_NUMPY + PYDANTIC) == set()
    finally:
        dev.loop_stop()
        hub.stop()
