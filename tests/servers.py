"""Real servers for the tests: Mosquitto and InfluxDB 1.x on free loopback ports.

Each server runs in its own temporary directory and is stopped by the PID we
started, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def in_ci() -> bool:
    """True under CI (`CI=true`, as .ci/run and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail_in_ci(reason: str) -> None:
    """Skip a test this machine cannot run; under CI fail instead, since CI must run everything."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} — CI=true: this test must run in CI, fix the CI machine", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError(f"{name} not found: run `bash .ci/run` once, or apt-get install it")


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class ManagedProcess:
    argv: list[str]
    workdir: Path
    log_name: str
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        log = open(self.workdir / self.log_name, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, n: int = 40) -> str:
        path = self.workdir / self.log_name
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


class MosquittoServer:
    """A Mosquitto on a free loopback port, with an optional extra config body."""

    def __init__(self, workdir: Path, config: str = "", port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.extra_config = config
        conf = self.workdir / "mosquitto.conf"
        body = config or "allow_anonymous true\n"
        if os.geteuid() == 0 and "\nuser " not in "\n" + body:
            # as root Mosquitto would drop to `mosquitto` and could not write its persistence file
            body += "user root\n"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {self.workdir}/\n"
            "log_dest stdout\nlog_type error\nlog_type warning\nlog_type notice\n"
            "max_queued_messages 100000\nset_tcp_nodelay true\n" + body
        )
        self.process = ManagedProcess([find_binary("mosquitto"), "-c", str(conf)], workdir, "mosquitto.log")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> MosquittoServer:
        self.process.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.process = ManagedProcess(self.process.argv, self.workdir, "mosquitto.log")
        self.start()


class InfluxServer:
    """Debian's influxd 1.x on free loopback ports, data in `workdir`."""

    def __init__(self, workdir: Path, auth: tuple[str, str] | None = None) -> None:
        """With `auth` (user, password) HTTP authentication is on and that admin user is created."""
        self.workdir = workdir
        self.auth = auth
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.rpc_port = free_port()
        conf = self.workdir / "influxdb.conf"
        conf.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.workdir}/meta"
[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-body-size = 0
  auth-enabled = {"true" if auth else "false"}
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
"""
        )
        self.process = ManagedProcess([find_binary("influxd"), "-config", str(conf)], workdir, "influxd.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> InfluxServer:
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                    if r.status == 204:
                        if self.auth:  # the first admin may be created without credentials
                            self._create_admin()
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if self.process.proc is not None and self.process.proc.poll() is not None:
                raise RuntimeError("influxd exited:\n" + self.process.log_tail())
            time.sleep(0.1)
        raise TimeoutError("influxd did not answer /ping:\n" + self.process.log_tail())

    def _create_admin(self) -> None:
        import contextlib
        from urllib.parse import urlencode

        assert self.auth is not None
        user, password = self.auth
        q = f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
        req = urllib.request.Request(f"{self.url}/query", data=urlencode({"q": q}).encode(), method="POST")
        with contextlib.suppress(urllib.error.HTTPError):  # a restart: the user exists already
            urllib.request.urlopen(req, timeout=5).close()

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        self.stop()
        self.process = ManagedProcess(self.process.argv, self.workdir, "influxd.log")
        self.start()

    def query(self, q: str, db: str = "villagehub", epoch: str = "s") -> list[dict[str, Any]]:
        """Run InfluxQL; return the series of the first statement (empty list when none).
        Times come back as integers in `epoch` units (s, ms, u, ns)."""
        import json
        from urllib.parse import urlencode

        params = {'db': db, 'q': q, 'epoch': epoch}
        if self.auth:
            params.update(u=self.auth[0], p=self.auth[1])
        url = f"{self.url}/query?{urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        result = body["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return list(result.get("series", []))

    def rows(self, q: str, db: str = "villagehub", epoch: str = "s") -> list[dict[str, Any]]:
        """Run InfluxQL; flatten the first statement's series into dicts (tags included)."""
        out: list[dict[str, Any]] = []
        for series in self.query(q, db, epoch):
            cols: list[str] = series["columns"]
            tags: dict[str, Any] = series.get("tags") or {}
            for values in series["values"]:
                row: dict[str, Any] = dict(zip(cols, values, strict=True))
                row.update(tags)
                out.append(row)
        return out


@contextlib.contextmanager
def running(server: MosquittoServer | InfluxServer) -> Iterator[MosquittoServer | InfluxServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
