"""Browser fixtures: a real hub (`villagehub serve`) on real Mosquitto and InfluxDB, the sample
township simulated by `villagehub sim`, and Debian's Chromium driven by Playwright.

Chromium is the system package (`apt-get install chromium`), never a Playwright download.
Screenshots go to test-artifacts/ (set VH_TEST_ARTIFACTS to move them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    InfluxServer,
    ManagedProcess,
    MosquittoServer,
    free_port,
    skip_or_fail_in_ci,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("VH_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM = os.environ.get("VH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
ADMIN_TOKEN = "vh-browser-test-admin-token-0123456789"
HEARTBEAT_S = 60.0     # slow: a forced `offline` must not be undone by the next heartbeat mid-test
SNAPSHOT_S = 20.0
DEVICES = 500          # a synthetic township of this size (python -m hub.registry.sample --devices N)


def villagehub(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub", *args]


def missing_browser_part() -> str | None:
    """What this machine lacks to run the browser tests, with the command that fixes it; or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]', or pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install -y chromium, or set VH_CHROMIUM)"
    if not (REPO / "dashboards" / "node_modules" / "echarts" / "dist" / "echarts.min.js").exists():
        return "dashboards/node_modules missing (cd dashboards && npm ci)"
    return None


def skip_without_browser() -> None:
    """Skip locally when a part is missing; under CI=true fail, naming the fix (CI runs every test)."""
    missing = missing_browser_part()
    if missing:
        skip_or_fail_in_ci(missing)


@dataclass
class EnvProcess(ManagedProcess):
    """A ManagedProcess with its own environment (the test process's stays untouched)."""

    env: dict[str, str] | None = None

    def start(self) -> None:
        log = open(self.workdir / self.log_name, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.argv, cwd=self.workdir, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()


@dataclass
class RunningHub:
    url: str
    port: int
    env: dict[str, str]
    data_dir: Path
    process: EnvProcess
    admin_token: str
    operator_token: str
    viewer_token: str
    mqtt_port: int

    def get(self, path: str, token: str | None = None) -> Any:
        req = urllib.request.Request(self.url + path,
                                     headers={"Authorization": f"Bearer {token or self.admin_token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def send(self, method: str, path: str, body: Any) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Authorization": f"Bearer {self.admin_token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def start(self) -> None:
        self.process = EnvProcess(villagehub("serve"), self.data_dir, "hub.log", env=self.env)
        self.process.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if self.process.proc is not None and self.process.proc.poll() is not None:
                raise RuntimeError("villagehub serve exited:\n" + self.process.log_tail())
            time.sleep(0.1)
        raise TimeoutError("villagehub serve did not answer /healthz:\n" + self.process.log_tail())


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout




@pytest.fixture(scope="module")
def browser_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A broker of these tests' own: the simulated township's retained statuses stay out of the
    session broker other tests share."""
    server = MosquittoServer(tmp_path_factory.mktemp("browser-mosquitto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(browser_broker: MosquittoServer, influxdb: InfluxServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """`villagehub serve` with a 500-device township registered and simulated, all devices online."""
    skip_without_browser()
    mosquitto = browser_broker
    data = tmp_path_factory.mktemp("hub")
    port = free_port()
    env = {**os.environ, "VH_MQTT_URL": mosquitto.url, "VH_INFLUX_URL": influxdb.url,
           "VH_INFLUX_DB": "villagehub_browser", "VH_DATA_DIR": str(data), "VH_HTTP_HOST": "127.0.0.1",
           "VH_HTTP_PORT": str(port), "VH_BOOTSTRAP_TOKEN": ADMIN_TOKEN, "VH_LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(REPO)}
    township = data / "township.yaml"
    township.write_text(_run([sys.executable, "-m", "hub.registry.sample", "--devices", str(DEVICES)], env, data))
    _run(villagehub("registry", "import", str(township)), env, data)
    running = RunningHub(f"http://127.0.0.1:{port}", port, env, data,
                         EnvProcess(["true"], data, "unused.log"), ADMIN_TOKEN, "", "", mosquitto.port)
    running.start()
    for role in ("operator", "viewer"):
        made = running.send("POST", "/api/v1/tokens", {"name": f"browser-{role}", "role": role})
        setattr(running, f"{role}_token", made["token"])
    sim = EnvProcess(villagehub(
        "sim", "--township", str(township), "--broker", mosquitto.url,
        "--heartbeat-interval", str(HEARTBEAT_S), "--snapshot-interval", str(SNAPSHOT_S),
        "--resolution", "320x180", "--report-every", "0"), data, "sim.log", env=env)
    sim.start()
    try:
        total = sum(running.get("/api/v1/overview")["devices"][k]["total"] for k in ("camera", "speaker"))
        deadline = time.monotonic() + 60
        online = 0
        while time.monotonic() < deadline:
            ov = running.get("/api/v1/overview")
            online = sum(ov["devices"][k]["online"] for k in ("camera", "speaker"))
            if online == total:
                break
            time.sleep(0.5)
        assert online == total, f"only {online}/{total} simulated devices online:\n{sim.log_tail()}"
        yield running
    finally:
        sim.stop()
        running.process.stop()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, one for the browser tests: stopped after them, so that Playwright's
    event loop does not outlive them (asyncio.run() in later tests refuses a running loop)."""
    skip_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def browser(hub: RunningHub, chromium: Any) -> Any:
    return chromium


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A 1920×1080 page; a screenshot of it lands in test-artifacts/ whatever the outcome."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"wall-{request.node.name}.png"))
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def save_doc_screenshot(pg: Any) -> None:
    """VH_UPDATE_DOCS_SCREENSHOT=1 refreshes docs/screenshots/wall-screen.png."""
    if os.environ.get("VH_UPDATE_DOCS_SCREENSHOT") == "1":
        target = REPO / "docs" / "screenshots" / "wall-screen.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "wall-screen.png"))
        shutil.copyfile(ARTIFACTS / "wall-screen.png", target)
