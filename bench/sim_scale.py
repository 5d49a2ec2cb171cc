"""Benchmark: N simulated devices in ONE process, each with its own MQTT connection.

    python -m bench.sim_scale --devices 5000 --heartbeat-interval 10 --hold 30

Starts a private Mosquitto on a free loopback port (unless --broker is given),
connects the fleet, keeps it heartbeating, counts what a plain subscriber
receives and prints one JSON object: connect time, achieved rates, lost
heartbeats, the simulator's CPU and memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

from device_sim import DeviceOptions, Fleet, FleetConfig, from_counts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_mosquitto() -> Any:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "m.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
                        "log_dest stderr\nlog_type error\n")
        proc = subprocess.Popen([binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
                time.sleep(0.05)
            yield f"mqtt://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class Recorder:
    """A plain subscriber counting heartbeats and seq gaps per device."""

    def __init__(self, url: str) -> None:
        host, port = url.split("//")[1].split(":")
        self.counts: Counter[str] = Counter()
        self.last_seq: dict[str, int] = {}
        self.gaps = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-recorder")
        self.client.on_message = self._on
        self.client.connect(host, int(port))
        self.client.subscribe("vhub/v1/dev/+/heartbeat", 0)
        self.client.loop_start()

    def _on(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        dev = m.topic.split("/")[3]
        seq = json.loads(m.payload).get("seq")
        with self.lock:
            self.counts[dev] += 1
            prev = self.last_seq.get(dev)
            if prev is not None and isinstance(seq, int) and seq > prev + 1:
                self.gaps += seq - prev - 1
            if isinstance(seq, int):
                self.last_seq[dev] = seq

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run(devices: int, heartbeat_interval: float, hold: float, connect_timeout: float,
        broker: str | None, snapshot_interval: float, resolution: tuple[int, int]) -> dict[str, Any]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # mosquitto inherits it
    cams = devices // 2
    with contextlib.ExitStack() as stack:
        if broker is None:
            broker, broker_pid = stack.enter_context(private_mosquitto())
        else:
            broker_pid = None
        rec = Recorder(broker)
        opts = DeviceOptions(heartbeat_interval_s=heartbeat_interval, snapshot_interval_s=snapshot_interval,
                             width=resolution[0], height=resolution[1], heartbeat_qos=1)
        fleet = Fleet(FleetConfig(devices=from_counts(cams, devices - cams, villages=50),
                                  broker_url=broker, options=opts, connect_rate=2000))
        proc = psutil.Process()
        cpu0 = proc.cpu_times()
        t0 = time.monotonic()
        fleet.start()
        all_up = fleet.wait_connected(timeout=connect_timeout)
        t_connect = time.monotonic() - t0
        connected = fleet.connected_count()
        fleet.report()  # reset the rate window
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        with rec.lock:
            before = sum(rec.counts.values())
        samples = []
        while time.monotonic() - t1 < hold:
            time.sleep(min(5.0, hold))
            samples.append(fleet.report())
        with rec.lock:
            received = sum(rec.counts.values()) - before
            reporting = len(rec.counts)
            gaps = rec.gaps
        cpu2, t2 = proc.cpu_times(), time.monotonic()
        broker_cpu = None
        if broker_pid:
            with contextlib.suppress(psutil.Error):
                bt = psutil.Process(broker_pid).cpu_times()
                broker_cpu = round(bt.user + bt.system, 1)
        t_stop0 = time.monotonic()
        fleet.stop(timeout=60)
        t_stop = time.monotonic() - t_stop0
        rec.stop()
    steady_s = t2 - t1
    return {
        "devices": devices,
        "cameras": cams,
        "speakers": devices - cams,
        "all_connected": all_up,
        "connected": connected,
        "connect_s": round(t_connect, 2),
        "connect_cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 2),
        "heartbeat_interval_s": heartbeat_interval,
        "hold_s": round(steady_s, 1),
        "heartbeats_received": received,
        "heartbeats_per_s": round(received / steady_s, 1),
        "heartbeats_expected_per_s": round(connected / heartbeat_interval, 1),
        "devices_heard": reporting,
        "seq_gaps": gaps,
        "sim_cpu_pct_steady": round(100 * ((cpu2.user + cpu2.system) - (cpu1.user + cpu1.system)) / steady_s, 1),
        "sim_rss_mb": round(proc.memory_info().rss / 2**20, 1),
        "sim_threads": proc.num_threads(),
        "broker_cpu_s_total": broker_cpu,
        "stop_s": round(t_stop, 2),
        "last_report": samples[-1] if samples else None,
        "cpus": psutil.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--heartbeat-interval", type=float, default=10.0)
    p.add_argument("--snapshot-interval", type=float, default=0.0, help="0 = no scheduled snapshots")
    p.add_argument("--resolution", default="320x180")
    p.add_argument("--hold", type=float, default=30.0, help="seconds of steady heartbeating measured")
    p.add_argument("--connect-timeout", type=float, default=120.0)
    p.add_argument("--broker", default=None, help="use this broker instead of a private Mosquitto")
    a = p.parse_args(argv)
    w, h = (int(x) for x in a.resolution.split("x"))
    result = run(a.devices, a.heartbeat_interval, a.hold, a.connect_timeout, a.broker,
                 a.snapshot_interval, (w, h))
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0 if result["all_connected"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
