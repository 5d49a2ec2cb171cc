"""`villagehub demo`: a whole township with one command, ready within 30 s, stopped cleanly by Ctrl-C.

The demo takes its settings from the environment like every command (PROTOCOL §8): flags
override `VH_*` variables, which override the defaults.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.hubproc import http
from tests.servers import free_port

pytestmark = pytest.mark.e2e

TOKEN = "demo-env-token-" + "0123456789abcdef" * 2  # 47 characters


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VH_")}
    env.update(extra)
    return env


def start_demo(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """The demo in a process group of its own, so the test can press Ctrl-C as a terminal does:
    SIGINT to the whole foreground process group."""
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "hub", "demo", *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, process_group=0)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float = 30.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        try:
            if http("GET", f"http://127.0.0.1:{port}/readyz", token=None, timeout=1)[0] == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError("demo not ready:\n" + log_path.read_text(errors="replace")[-3000:])


def wait_township_online(port: int, token: str, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    online = 0
    while time.monotonic() - t0 < timeout:
        status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/devices?status=online&limit=1", token=token)
        assert status == 200, body
        online = body["total"]
        if online >= 200:  # the sample township has 273 devices, a few faulty on purpose
            return
        time.sleep(0.5)
    raise AssertionError(f"only {online} devices online")


def ctrl_c_and_check(proc: subprocess.Popen[bytes], log_path: Path) -> str:
    """Ctrl-C to the process group; returns what the demo wrote after it."""
    children = psutil.Process(proc.pid).children(recursive=True)
    before = len(log_path.read_bytes())
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(30)
    after = log_path.read_bytes()[before:].decode(errors="replace")
    assert proc.returncode in (0, -signal.SIGINT, 130), after[-2000:]
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running after the demo: {alive}"  # stopped by the demo, not left behind
    assert "cannot reach the broker" not in after, after[-3000:]
    assert "Traceback" not in after, after[-3000:]
    assert "demo stopped" in after
    return after


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(5)


def test_demo_takes_port_data_dir_and_bootstrap_token_from_the_environment_and_stops_quietly_on_ctrl_c(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    data_dir = tmp_path / "demo-data"
    log_path = tmp_path / "demo.log"
    env = clean_env(VH_HTTP_PORT=str(port), VH_HTTP_HOST="127.0.0.1", VH_DATA_DIR=str(data_dir),
                    VH_BOOTSTRAP_TOKEN=TOKEN)
    proc = start_demo(["--broker", "mosquitto"], env, log_path)
    procs.append(proc)
    wait_ready(proc, port, log_path)
    # The operator's token is accepted (as admin: the token list is admin-only) ...
    assert http("GET", f"http://127.0.0.1:{port}/api/v1/tokens", token=TOKEN)[0] == 200
    assert http("GET", f"http://127.0.0.1:{port}/api/v1/devices?limit=1", token="wrong-" + TOKEN)[0] == 401
    wait_township_online(port, TOKEN)
    # ... the state lives in VH_DATA_DIR ...
    assert (data_dir / "registry.db").is_file() and (data_dir / "hub.db").is_file()
    # ... and the token is never printed in full.
    text = log_path.read_text(errors="replace")
    assert "VH_BOOTSTRAP_TOKEN" in text
    assert TOKEN not in text
    ctrl_c_and_check(proc, log_path)
    assert (data_dir / "registry.db").is_file(), "the operator's data dir must be kept"


def hold_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def run_to_exit(args: list[str], env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_demo_on_a_taken_port_says_so_in_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    with hold_port() as held:
        port = held.getsockname()[1]
        r = run_to_exit(["demo", "--broker", "mosquitto"],
                        clean_env(VH_HTTP_PORT=str(port), VH_DATA_DIR=str(tmp_path / "d"), VH_BOOTSTRAP_TOKEN=TOKEN))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert str(port) in lines[0] and "in use" in lines[0]


def test_a_demo_flag_overrides_the_environment(tmp_path: Path) -> None:
    """--port wins over VH_HTTP_PORT: with the flag's port taken the demo refuses to start,
    though the port in the environment is free."""
    with hold_port() as held:
        port = held.getsockname()[1]
        r = run_to_exit(["demo", "--broker", "mosquitto", "--port", str(port)],
                        clean_env(VH_HTTP_PORT=str(free_port()), VH_DATA_DIR=str(tmp_path / "d")))
    assert r.returncode != 0
    assert f"{port}" in r.stderr and "in use" in r.stderr, r.stderr


def test_serve_on_a_taken_port_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    with hold_port() as held:
        port = held.getsockname()[1]
        r = run_to_exit(["serve"], clean_env(VH_HTTP_PORT=str(port), VH_DATA_DIR=str(tmp_path / "d"),
                                             VH_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}"))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    assert f"{port}" in r.stderr and "in use" in r.stderr, r.stderr


def run_demo_with_flags_and_check(tmp_path: Path, broker: str) -> None:
    port = free_port()
    log_path = tmp_path / "demo.log"
    proc = start_demo(["--port", str(port), "--data-dir", str(tmp_path / "data"), "--broker", broker],
                      clean_env(), log_path)
    try:
        wait_ready(proc, port, log_path)
        token = ""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20 and not token:
            m = re.search(r"admin token: (\S+)", log_path.read_text(errors="replace"))
            token = m.group(1) if m else ""
            time.sleep(0.2)
        assert len(token) >= 32
        wait_township_online(port, token)
        ctrl_c_and_check(proc, log_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.slow
def test_demo_with_the_embedded_broker_runs_without_mosquitto(tmp_path: Path) -> None:
    run_demo_with_flags_and_check(tmp_path, "embedded")
