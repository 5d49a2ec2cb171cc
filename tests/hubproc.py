"""Run the hub for end-to-end tests: in this process (a thread with its own event loop)
or as a real `python -m hub serve` process (for SIGKILL / SIGTERM tests)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from hub.bootstrap import Hub, build_services, serve_async
from hub.settings import Settings, load_settings
from tests.servers import free_port

ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123"  # VH_BOOTSTRAP_TOKEN: >= 32 characters


def hub_settings(tmp: Path, mqtt_url: str, influx_url: str | None, **extra: Any) -> Settings:
    """A hub of its own: its own data directory, HTTP port and MQTT client id.

    The client id must never repeat within a run: every hub leaves a persistent session on the
    shared broker (session expiry 7 days), which queues the heartbeats of every later test; a hub
    that reused an id would resume that session and store another test's heartbeats."""
    return load_settings(
        mqtt_url=mqtt_url, influx_url=influx_url, data_dir=tmp / "hubdata", http_port=free_port(),
        bootstrap_token=ADMIN_TOKEN, mqtt_client_id=f"villagehub-test-{uuid.uuid4().hex[:16]}",
        write_flush_s=0.05, **extra,
    )


class InProcessHub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = build_services(settings)
        self.hub: Hub | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-hub", daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http.port}"

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(h: Hub) -> None:
                self.hub = h
                self._ready.set()

            await serve_async(self.services, on_ready=ready, stop=self._stop, install_signals=False)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def start(self, timeout: float = 20.0) -> InProcessHub:
        self._thread.start()
        if not self._ready.wait(timeout) or self.error:
            raise RuntimeError(f"hub did not start: {self.error}")
        assert self.services.mqtt is not None
        if not self.services.mqtt.wait_connected(10):
            raise RuntimeError("hub did not connect to the broker")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)

    def api(self, method: str, path: str, body: Any = None, token: str | None = ADMIN_TOKEN) -> tuple[int, Any]:
        return http(method, self.url + path, body, token)


def http(method: str, url: str, body: Any = None, token: str | None = ADMIN_TOKEN,
         timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            ctype = r.headers.get("content-type", "")
            return r.status, json.loads(raw) if "json" in ctype else raw
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


class HubProcess:
    """`python -m hub serve` as a child process, stopped by its PID."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http.port}"

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("VH_")}
        env.update({
            "VH_MQTT_URL": s.mqtt.url.raw, "VH_DATA_DIR": str(s.data_dir), "VH_HTTP_PORT": str(s.http.port),
            "VH_BOOTSTRAP_TOKEN": ADMIN_TOKEN, "VH_MQTT_CLIENT_ID": s.mqtt.client_id,
            "VH_WRITE_FLUSH_S": str(s.writer.flush_s), "VH_LOG_LEVEL": "INFO",
        })
        if s.influx.url:
            env["VH_INFLUX_URL"] = s.influx.url
        return env

    def start(self, timeout: float = 30.0) -> HubProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed below, kept by the child
        self.proc = subprocess.Popen([sys.executable, "-m", "hub", "serve"], env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("hub exited:\n" + self.log_path.read_text(errors="replace")[-3000:])
            try:
                status, _ = http("GET", self.url + "/readyz", token=None, timeout=1)
            except (urllib.error.URLError, OSError):
                status = 0
            if status == 200:
                return self
            time.sleep(0.1)
        raise TimeoutError("hub not ready:\n" + self.log_path.read_text(errors="replace")[-3000:])

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> float:
        """SIGTERM; returns how long the hub took to exit."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - t0

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
