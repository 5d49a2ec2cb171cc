"""`villagehub demo`: a whole township with one command, ready within 30 s, stopped cleanly by SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import psutil
import pytest

from tests.hubproc import http
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def run_demo_and_check(tmp_path: Path, broker: str) -> None:
    port = free_port()
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "demo", "--port", str(port), "--data-dir", str(tmp_path / "data"),
             "--broker", broker],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        t0 = time.monotonic()
        ready = False
        while time.monotonic() - t0 < 30 and proc.poll() is None:
            try:
                ready = http("GET", f"http://127.0.0.1:{port}/readyz", token=None, timeout=1)[0] == 200
            except (urllib.error.URLError, OSError):
                ready = False
            if ready:
                break
            time.sleep(0.2)
        assert ready, log_path.read_text(errors="replace")[-3000:]
        token = ""
        while time.monotonic() - t0 < 40 and not token:
            m = re.search(r"admin token: (\S+)", log_path.read_text(errors="replace"))
            token = m.group(1) if m else ""
            time.sleep(0.2)
        assert token
        online = 0
        while time.monotonic() - t0 < 60:
            status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/devices?status=online&limit=1", token=token)
            online = body["total"] if status == 200 else 0
            if online >= 200:  # the sample township has 273 devices, a few faulty on purpose
                break
            time.sleep(0.5)
        assert online >= 200, f"only {online} devices online"
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
        assert proc.returncode in (0, -signal.SIGINT, 130), log_path.read_text(errors="replace")[-2000:]
        time.sleep(0.5)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_demo_with_mosquitto_is_ready_lists_the_township_online_and_stops_on_sigint(tmp_path: Path) -> None:
    run_demo_and_check(tmp_path, "mosquitto")


@pytest.mark.slow
def test_demo_with_the_embedded_broker_runs_without_mosquitto(tmp_path: Path) -> None:
    run_demo_and_check(tmp_path, "embedded")
