"""A broker for `villagehub demo`: Mosquitto when it is installed, else the embedded amqtt.

Never used by the tests of the real path (they start a real Mosquitto themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


def _libc() -> Any:
    with contextlib.suppress(OSError):
        return ctypes.CDLL(None, use_errno=True)
    return None


_LIBC = _libc()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG).
    Only a call into libc here: nothing that could take a lock (the child of a forked process)."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def find_mosquitto() -> str | None:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class MosquittoBroker:
    """Mosquitto on a free loopback port, anonymous allowed (loopback demo only)."""

    kind = "mosquitto"
    mqtt_version = 5

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto-demo.conf"
        # As root Mosquitto would switch to the `mosquitto` user, which cannot write its
        # persistence into the (private, 0700) data directory.
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.workdir}/\n"
            "max_inflight_messages 0\nmax_queued_messages 100000\nmessage_size_limit 5242880\n"
            "log_dest stdout\nlog_type error\nlog_type warning\n" + user
        )
        log_file = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - owned by the process
        # A process group of its own: a Ctrl-C in the terminal reaches the demo only, which
        # stops the simulator and the hub first and this broker last. It also ends with the
        # demo if the demo is killed (parent-death signal, Linux).
        self._proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log_file,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      process_group=0, preexec_fn=_die_with_parent)
        log_file.close()
        if not _wait_port(self.port, 10):
            self.stop()
            tail = _tail(self.workdir / "mosquitto.log")
            raise RuntimeError(f"mosquitto did not start on 127.0.0.1:{self.port}{': ' + tail if tail else ''}")

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)


class AmqttBroker:
    """The pure-Python amqtt broker in a thread of its own (MQTT 3.1.1; ~3k msg/s: enough for a demo)."""

    kind = "amqtt"
    mqtt_version = 4

    def __init__(self) -> None:
        self.port = free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)
        self._thread.start()
        if not self._ready.wait(15) or self._error:
            raise RuntimeError(f"embedded broker did not start: {self._error}")

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # amqtt reports its own clients' troubles (a PUBACK that did not come, a client gone while
        # it iterated its subscriptions) as errors with tracebacks, by the hundred when a demo
        # fleet reconnects or stops; they are amqtt's business, not the operator's: debug only.
        loop.set_exception_handler(_broker_task_failed)
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        self._loop = loop
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}", "max_connections": 5000}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        try:
            self._broker = Broker(config, loop=loop)
            loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        with contextlib.suppress(Exception):
            loop.run_until_complete(self._broker.shutdown())
        loop.close()

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)


def _broker_task_failed(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    log.debug("embedded broker: %s (%r)", context.get("message"), context.get("exception"))


def start_demo_broker(workdir: Path, prefer: str = "auto") -> MosquittoBroker | AmqttBroker:
    """`prefer`: auto (Mosquitto when installed), mosquitto, or embedded (amqtt)."""
    binary = find_mosquitto() if prefer in ("auto", "mosquitto") else None
    if prefer == "mosquitto" and binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    broker: MosquittoBroker | AmqttBroker = MosquittoBroker(binary, workdir) if binary else AmqttBroker()
    broker.start()
    return broker
