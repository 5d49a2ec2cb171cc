"""Broker-side security (issue 7) against the REAL Mosquitto running the project's own mosquitto.conf.

The repository's mosquitto.conf is only localized (free loopback ports, a temporary
directory for files), never rewritten: a change there that weakens security fails
here. Credentials come from `hub.security` exactly as an operator makes them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hub.clock import SystemClock
from hub.security.credentials import CredentialStore
from tests.servers import ManagedProcess, find_binary, free_port, wait_port

pytestmark = pytest.mark.component

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "mosquitto.conf"
CERT_SCRIPT = REPO / "scripts" / "make-dev-certs.sh"
ROOT = "vhub/v1"
HUB_USER = "villagehub"


# --------------------------------------------------------------------------- the broker


def localize(conf: str, *, plain_port: int, tls_port: int, workdir: Path) -> str:
    """The project's config with test ports and paths; every other line kept as it is."""
    paths = {
        "password_file": workdir / "passwd",
        "acl_file": workdir / "acl",
        "certfile": workdir / "certs" / "server.crt",
        "keyfile": workdir / "certs" / "server.key",
        "cafile": workdir / "certs" / "ca.crt",
        "pid_file": workdir / "mosquitto.pid",
        "persistence_location": f"{workdir}/",
    }
    seen: set[str] = set()
    out: list[str] = []
    for line in conf.splitlines():
        words = line.split()
        key = words[0] if words and not line.startswith("#") else ""
        if key == "listener" and words[1] == "1883":
            line = f"listener {plain_port} {' '.join(words[2:])}"
            seen.add("plain")
        elif key == "listener" and words[1] == "8883":
            line = f"listener {tls_port} 127.0.0.1"  # tests stay on loopback
            seen.add("tls")
        elif key in paths:
            line = f"{key} {paths[key]}"
            seen.add(key)
        elif key == "log_dest":
            line = f"log_dest file {workdir}/mosquitto.log"
        out.append(line)
    must = {"plain", "tls", "password_file", "acl_file", "certfile", "keyfile", "persistence_location"}
    assert must <= seen, f"mosquitto.conf changed shape; localize() did not find {must - seen}"
    return "\n".join(out) + "\n"


@dataclass
class Broker:
    workdir: Path
    store: CredentialStore
    plain_port: int
    tls_port: int
    process: ManagedProcess
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def ca(self) -> str:
        return str(self.workdir / "certs" / "ca.crt")

    def issue(self, username: str, role: str = "device") -> str:
        cred = self.store.issue(username, "hub" if role == "hub" else "device")
        self.passwords[username] = cred.password
        return cred.password

    def apply(self) -> None:
        """What the operator does: write the files, SIGHUP Mosquitto, wait until it reloaded."""
        self.store.write_files(self.workdir / "passwd", self.workdir / "acl", topic_root=ROOT)
        log = self.workdir / "mosquitto.log"
        before = log.read_text(errors="replace").count("Reloading config")
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while log.read_text(errors="replace").count("Reloading config") <= before:
            assert time.monotonic() < deadline, "mosquitto did not reload"
            time.sleep(0.02)
        time.sleep(0.1)


def _give_to_mosquitto(path: Path) -> None:
    """Mosquitto started as root drops to user `mosquitto` before reading its files."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for p in [path, *path.rglob("*")]:
        if p.name != "ca.key":
            os.chown(p, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def project_broker(prefix: str, devices: tuple[str, ...]) -> Iterator[Broker]:
    """Mosquitto with the repository's mosquitto.conf, only localized (ports, paths), dev TLS
    certificates, and credentials for the hub's user and `devices` written by hub.security."""
    # Not pytest's tmp_path: its parents are 0700 root, which the dropped-privilege broker cannot enter.
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(workdir, 0o750)
        subprocess.run(
            ["bash", str(CERT_SCRIPT), str(workdir / "certs"), "hub.example.test"],
            check=True, capture_output=True, timeout=60,
        )
        store = CredentialStore(workdir / "state" / "credentials.db", SystemClock())
        b = Broker(workdir, store, free_port(), free_port(), None)  # type: ignore[arg-type]
        for dev in devices:
            b.issue(dev)
        b.issue(HUB_USER, "hub")
        store.write_files(workdir / "passwd", workdir / "acl", topic_root=ROOT)
        conf = workdir / "mosquitto.conf"
        conf.write_text(localize(CONF.read_text(), plain_port=b.plain_port, tls_port=b.tls_port, workdir=workdir))
        (workdir / "mosquitto.log").touch()
        _give_to_mosquitto(workdir)
        b.process = ManagedProcess([find_binary("mosquitto"), "-c", str(conf)], workdir, "mosquitto.stdout")
        b.process.start()
        try:
            wait_port(b.plain_port)
            wait_port(b.tls_port)
        except TimeoutError:
            raise RuntimeError("mosquitto did not start:\n" + (workdir / "mosquitto.log").read_text()) from None
        yield b
        b.process.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with project_broker("vh-broker-", ("devA", "devB")) as b:
        yield b


# --------------------------------------------------------------------------- a small MQTT client


class Conn:
    """A paho client that records what the broker answered, for assertions."""

    def __init__(
        self, broker: Broker, username: str | None, password: str | None = None, *,
        client_id: str = "", tls: bool = False, v5: bool = True,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        self.client.enable_logger(None)
        self.port = broker.tls_port if tls else broker.plain_port
        if tls:
            self.client.tls_set(ca_certs=broker.ca)
        if username is not None:
            self.client.username_pw_set(username, password if password is not None else broker.passwords.get(username))
        self.connack: ReasonCode | None = None
        self._connected = threading.Event()
        self.disconnected = threading.Event()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.__setitem__(mid, list(rcs))
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(mid, rc)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: object) -> None:
        self.connack = rc
        self._connected.set()
        if rc.is_failure:
            client.disconnect()  # no automatic retries

    def connect(self, timeout: float = 5) -> ReasonCode:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        assert self._connected.wait(timeout), "no CONNACK"
        assert self.connack is not None
        return self.connack

    def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic, qos)
        assert mid is not None
        _wait(lambda: mid in self.subacks)
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> ReasonCode | None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return None
        _wait(lambda: info.mid in self.pubacks)
        return self.pubacks[info.mid]

    def until(self, marker_topic: str, timeout: float = 5) -> list[mqtt.MQTTMessage]:
        """Everything received before the first message on `marker_topic` (which is left out).

        The broker routes messages in the order it receives them, so once a marker sent
        after the messages under test has arrived, anything else would have arrived too:
        negative assertions need no long sleeps.
        """
        got: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            if m.topic == marker_topic:
                return got
            got.append(m)

    def received_so_far(self) -> list[mqtt.MQTTMessage]:
        """Everything the broker has routed to this client so far, proven by a round trip instead
        of a sleep: Mosquitto writes a client's packets in order and paho handles them in order,
        so a PUBLISH routed to us before a fresh SUBSCRIBE arrives before its SUBACK."""
        self.subscribe(f"{ROOT}/roundtrip/{time.monotonic_ns()}")
        got: list[mqtt.MQTTMessage] = []
        while not self.messages.empty():
            got.append(self.messages.get_nowait())
        return got

    def close(self) -> None:
        if self.client.is_connected():
            self.client.disconnect()
        self.client.loop_stop()


def _wait(cond: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@contextlib.contextmanager
def connected(broker: Broker, username: str | None, password: str | None = None, **kw: object) -> Iterator[Conn]:
    conn = Conn(broker, username, password, **kw)  # type: ignore[arg-type]
    rc = conn.connect()
    assert not rc.is_failure, f"{username} refused: {rc}"
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def hub_watching(broker: Broker, topic: str = f"{ROOT}/#") -> Iterator[Conn]:
    with connected(broker, HUB_USER) as hub:
        assert not hub.subscribe(topic)[0].is_failure
        yield hub


def _topics(messages: list[mqtt.MQTTMessage]) -> list[str]:
    return [m.topic for m in messages]


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize("tls", [False, True], ids=["loopback", "tls"])
@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_anonymous_client_is_refused(broker: Broker, tls: bool, v5: bool) -> None:
    conn = Conn(broker, None, tls=tls, v5=v5)
    rc = conn.connect()
    conn.close()
    assert rc.is_failure
    assert rc.getName() in ("Not authorized", "Bad user name or password")


@pytest.mark.parametrize("tls", [False, True], ids=["loopback", "tls"])
def test_wrong_password_is_refused(broker: Broker, tls: bool) -> None:
    conn = Conn(broker, "devA", "not-the-password", tls=tls)
    rc = conn.connect()
    conn.close()
    assert rc.is_failure


def test_device_with_its_password_connects_over_tls_with_the_generated_ca(broker: Broker) -> None:
    with hub_watching(broker) as hub, connected(broker, "devA", tls=True) as dev:
        dev.publish(f"{ROOT}/dev/devA/heartbeat", b'{"kind":"camera"}')
        hub.until(f"{ROOT}/dev/devA/heartbeat")


def test_tls_with_an_unknown_ca_is_refused(broker: Broker) -> None:
    ctx = ssl.create_default_context()  # the system's CAs, not ours
    with socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as raw, pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="localhost")


def test_tls_certificate_names_localhost_and_the_configured_hostname(broker: Broker) -> None:
    ctx = ssl.create_default_context(cafile=broker.ca)
    for name in ("localhost", "hub.example.test"):
        with socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=name) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


# --------------------------------------------------------------------------- authorisation (PROTOCOL §2)


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_device_cannot_publish_on_another_devices_topics(broker: Broker, v5: bool) -> None:
    with hub_watching(broker) as hub, connected(broker, "devA", tls=True, v5=v5) as dev_a:
        for channel in ("status", "heartbeat", "snapshot", "event", "ack", "cmd"):
            rc = dev_a.publish(f"{ROOT}/dev/devB/{channel}", b"spoofed")
            if v5:  # MQTT 5 says so in the PUBACK; 3.1.1 drops it silently
                assert rc is not None and rc.getName() == "Not authorized", channel
        dev_a.publish(f"{ROOT}/hub/status", b"offline")
        dev_a.publish(f"{ROOT}/dev/devA/heartbeat", b"marker")  # its own topic: delivered
        seen = _topics(hub.until(f"{ROOT}/dev/devA/heartbeat"))
    assert seen == []


def test_device_writes_only_its_five_channels(broker: Broker) -> None:
    with hub_watching(broker) as hub, connected(broker, "devA", tls=True) as dev_a:
        for topic in (f"{ROOT}/dev/devA/cmd", f"{ROOT}/dev/devA/other", f"{ROOT}/devA", "elsewhere/x"):
            assert dev_a.publish(topic, b"x").getName() == "Not authorized", topic  # type: ignore[union-attr]
        for channel in ("status", "heartbeat", "snapshot", "event", "ack"):
            assert not dev_a.publish(f"{ROOT}/dev/devA/{channel}", b"x").is_failure  # type: ignore[union-attr]
        seen = _topics(hub.until(f"{ROOT}/dev/devA/ack"))
    assert seen == [f"{ROOT}/dev/devA/{c}" for c in ("status", "heartbeat", "snapshot", "event")]


def test_device_reads_its_own_cmd_and_the_hub_status(broker: Broker) -> None:
    with connected(broker, "devA", tls=True) as dev_a, connected(broker, HUB_USER) as hub:
        assert not dev_a.subscribe(f"{ROOT}/dev/devA/cmd")[0].is_failure
        assert not dev_a.subscribe(f"{ROOT}/hub/status")[0].is_failure
        hub.publish(f"{ROOT}/dev/devA/cmd", b'{"id":"c1"}')
        hub.publish(f"{ROOT}/hub/status", b"online")
        assert _topics(dev_a.until(f"{ROOT}/hub/status")) == [f"{ROOT}/dev/devA/cmd"]


@pytest.mark.parametrize(
    "topic", ["#", f"{ROOT}/#", f"{ROOT}/dev/+/cmd", f"{ROOT}/dev/devB/cmd", f"{ROOT}/dev/devB/#", "$SYS/#"]
)
def test_device_cannot_subscribe_beyond_its_own_cmd(broker: Broker, topic: str) -> None:
    with connected(broker, "devA", tls=True) as dev_a, connected(broker, "devB", tls=True) as dev_b, \
            connected(broker, HUB_USER) as hub:
        dev_a.subscribe(topic)  # Mosquitto 2.0 may grant a wildcard SUBACK: it checks the ACL per message
        dev_a.subscribe(f"{ROOT}/dev/devA/cmd")  # for the marker
        hub.publish(f"{ROOT}/dev/devB/cmd", b'{"id":"for-b"}')
        hub.publish(f"{ROOT}/dev/devC/cmd", b'{"id":"for-c"}')
        dev_b.publish(f"{ROOT}/dev/devB/heartbeat", b"b's heartbeat")
        hub.publish(f"{ROOT}/dev/devA/cmd", b'{"id":"marker"}')
        got = _topics(dev_a.until(f"{ROOT}/dev/devA/cmd"))
    assert got == []


def test_device_cannot_write_a_retained_message_to_any_cmd_topic(broker: Broker) -> None:
    with connected(broker, "devA", tls=True) as dev_a:
        for target in ("devA", "devB", "nobody"):
            rc = dev_a.publish(f"{ROOT}/dev/{target}/cmd", b'{"id":"evil","action":"play"}', retain=True)
            assert rc is not None and rc.getName() == "Not authorized"
    with connected(broker, HUB_USER) as hub:  # a retained message would arrive on subscribe
        hub.subscribe(f"{ROOT}/dev/+/cmd")
        hub.publish(f"{ROOT}/dev/marker/cmd", b"not retained")
        assert _topics(hub.until(f"{ROOT}/dev/marker/cmd")) == []


# --------------------------------------------------------------------------- identities


@pytest.mark.parametrize("client_id", ["#", "+", "devB/#"])
def test_wildcard_client_id_on_the_device_listener_becomes_the_username(broker: Broker, client_id: str) -> None:
    """use_username_as_clientid: a client id `#` never exists; the session is the device's own."""
    with hub_watching(broker) as hub:
        first = Conn(broker, "devA", tls=True, client_id="devA")
        assert not first.connect().is_failure
        with connected(broker, "devA", tls=True, client_id=client_id) as second:
            # Same effective client id "devA": the broker takes the session over from `first`.
            assert first.disconnected.wait(5)
            second.publish(f"{ROOT}/dev/devA/heartbeat", b"hb")
            assert _topics(hub.until(f"{ROOT}/dev/devA/heartbeat")) == []
        first.close()


@pytest.mark.parametrize("client_id", ["#", "+", "a/#", "+/+"])
def test_wildcard_client_id_on_the_loopback_listener_gets_a_device_no_access(broker: Broker, client_id: str) -> None:
    """There the id is not forced; Mosquitto refuses every %u/%c pattern check to a client id with `+`/`#`.

    (The hub's own user is not a pattern user: its client ids are its own business, on loopback only.)
    """
    with hub_watching(broker) as hub, connected(broker, "devA", client_id=client_id) as odd:
        assert odd.publish(f"{ROOT}/dev/devA/heartbeat", b"hb").getName() == "Not authorized"  # type: ignore[union-attr]
        odd.subscribe(f"{ROOT}/dev/devA/cmd")
        hub.publish(f"{ROOT}/dev/devA/cmd", b'{"id":"c"}')
        assert _topics(hub.until(f"{ROOT}/dev/devA/cmd")) == []  # routed: a copy for `odd` would be on its way
        assert _topics(odd.received_so_far()) == []


# --------------------------------------------------------------------------- rotate, revoke


def test_revoked_device_is_refused_and_its_open_connection_dropped(broker: Broker) -> None:
    broker.issue("devRevoked")
    broker.apply()
    live = Conn(broker, "devRevoked", tls=True)
    assert not live.connect().is_failure
    assert broker.store.revoke("devRevoked")
    broker.apply()
    assert live.disconnected.wait(5), "the revoked device stayed connected after the reload"
    live.close()
    again = Conn(broker, "devRevoked", tls=True)
    rc = again.connect()
    again.close()
    assert rc.is_failure


def test_rotation_drops_the_old_password_connection_and_only_the_new_one_connects(broker: Broker) -> None:
    broker.issue("devRotated")
    broker.apply()
    old = broker.passwords["devRotated"]
    live = Conn(broker, "devRotated", old, tls=True)
    assert not live.connect().is_failure
    new = broker.store.rotate("devRotated").password
    broker.apply()
    assert live.disconnected.wait(5), "a connection made with the old password survived the reload"
    live.close()
    conn_old = Conn(broker, "devRotated", old, tls=True)
    assert conn_old.connect().is_failure
    conn_old.close()
    with connected(broker, "devRotated", new, tls=True):
        pass


# --------------------------------------------------------------------------- abuse


def _connect_packet(client_id: str, username: str, password: str) -> bytes:
    def s(v: str) -> bytes:
        b = v.encode()
        return len(b).to_bytes(2, "big") + b

    body = s("MQTT") + bytes([4, 0xC2]) + (30).to_bytes(2, "big") + s(client_id) + s(username) + s(password)
    length, enc = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        enc += bytes([byte | (0x80 if length else 0)])
        if not length:
            return b"\x10" + enc + body


# The attacker runs in processes of its own (so its CPU and GIL do not slow the test's
# clients), started with nothing but the standard library: wrong-password TLS
# connects at a fixed rate, printing each CONNACK return code (-1: none).
STORM_SCRIPT = r"""
import socket, ssl, sys, time
port, cafile, first, count, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
packet = bytes.fromhex(sys.argv[6])
ctx = ssl.create_default_context(cafile=cafile)
t0 = time.monotonic()
for i in range(count):
    delay = t0 + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(packet)
            connack = tls.recv(4)
            print(connack[3] if len(connack) == 4 else -1)
    except OSError:
        print(-1)
"""

STORM_ATTEMPTS, STORM_PROCESSES, STORM_RATE = 500, 4, 250.0  # 500 attempts at 250/s: 2 s


def test_wrong_password_storm_leaves_legitimate_heartbeats_flowing(broker: Broker) -> None:
    per_process = STORM_ATTEMPTS // STORM_PROCESSES
    packet = _connect_packet("storm", "devB", "a-wrong-guess").hex()
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    with hub_watching(broker, f"{ROOT}/dev/devA/heartbeat") as hub, connected(broker, "devA", tls=True) as dev:
        t0 = time.monotonic()
        attackers = [
            subprocess.Popen(
                [sys.executable, "-c", STORM_SCRIPT, str(broker.tls_port), broker.ca, str(k * per_process),
                 str(per_process), str(STORM_RATE / STORM_PROCESSES), packet],
                stdout=subprocess.PIPE, text=True,
            )
            for k in range(STORM_PROCESSES)
        ]
        try:
            n = 0
            while any(a.poll() is None for a in attackers) and n < 2000:  # a heartbeat every 20 ms meanwhile
                sent[str(n)] = time.monotonic()
                dev.publish(f"{ROOT}/dev/devA/heartbeat", str(n).encode(), qos=1)
                n += 1
                time.sleep(0.02)
            outputs = [a.communicate(timeout=30)[0] for a in attackers]
        finally:
            for a in attackers:
                if a.poll() is None:
                    a.kill()
                    a.wait()
        storm_s = time.monotonic() - t0
        codes = [int(line) for out in outputs for line in out.split()]
        deadline = time.monotonic() + 3
        while len(received) < len(sent) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                m = hub.messages.get(timeout=0.1)
                received.setdefault(m.payload.decode(), m.timestamp)  # paho: monotonic at receipt
    latencies = sorted(received[k] - sent[k] for k in received)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nstorm: {len(codes)} wrong-password TLS connects in {storm_s:.2f}s; "
          f"{len(sent)} heartbeats meanwhile, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert len(codes) == STORM_ATTEMPTS
    assert set(codes) == {5}, f"CONNACK codes {sorted(set(codes))}"  # 5: not authorised, every one
    assert set(received) == set(sent), f"lost {len(sent) - len(received)} of {len(sent)} heartbeats"
    # the latencies above are printed, not asserted: speed is the benchmarks' business


# --------------------------------------------------------------------------- listeners by configuration


def _listeners(conf: str) -> list[tuple[list[str], dict[str, str]]]:
    """(listener words, options) per listener block of a mosquitto.conf."""
    blocks: list[tuple[list[str], dict[str, str]]] = []
    for line in conf.splitlines():
        words = line.split(None, 1)
        if not words or line.lstrip().startswith("#"):
            continue
        if words[0] == "listener":
            blocks.append((line.split()[1:], {}))
        elif blocks:
            blocks[-1][1][words[0]] = words[1] if len(words) > 1 else ""
    return blocks


def test_plaintext_listener_binds_loopback_only_by_configuration() -> None:
    blocks = _listeners(CONF.read_text())
    plaintext = [words for words, opts in blocks if "certfile" not in opts and "psk_hint" not in opts]
    assert plaintext, "no plaintext listener found"
    for words in plaintext:
        assert len(words) >= 2 and words[1] in ("127.0.0.1", "::1", "localhost"), words
    for _, opts in blocks:
        assert opts.get("allow_anonymous") == "false"
        assert "password_file" in opts and "acl_file" in opts


def test_plaintext_port_is_unreachable_from_a_non_loopback_address(broker: Broker) -> None:
    # the kernel's own view first (holds on a machine with no other address, so nothing is skipped)
    bound = {c.laddr[0] for c in psutil.net_connections("inet")
             if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr[1] == broker.plain_port}
    assert bound == {"127.0.0.1"}, bound
    addresses = [
        a.address for addrs in psutil.net_if_addrs().values() for a in addrs
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    for address in addresses:  # and from every other address this machine has
        with pytest.raises(OSError), socket.create_connection((address, broker.plain_port), timeout=2):
            pass


def test_broker_size_limits_leave_room_for_the_hubs_snapshot_limit() -> None:
    from hub.settings import SnapshotSettings

    opts = dict(
        re.findall(r"^(message_size_limit|max_packet_size)\s+(\d+)", CONF.read_text(), flags=re.M)
    )
    snapshot_limit = SnapshotSettings.model_fields["max_bytes"].default
    assert snapshot_limit < int(opts["message_size_limit"]) < int(opts["max_packet_size"])


def test_a_snapshot_at_the_limit_passes_and_a_far_larger_one_is_dropped_by_the_broker(broker: Broker) -> None:
    with hub_watching(broker, f"{ROOT}/dev/+/snapshot") as hub, connected(broker, "devA", tls=True) as dev, \
            connected(broker, "devB", tls=True) as other:
        dev.publish(f"{ROOT}/dev/devA/snapshot", b"\xff\xd8" + b"\0" * (4 * 1024 * 1024 - 2))
        other.publish(f"{ROOT}/dev/devB/snapshot", b"\xff\xd8marker")
        assert [len(m.payload) for m in hub.until(f"{ROOT}/dev/devB/snapshot")] == [4 * 1024 * 1024]
        # QoS 0: the broker drops it (and may disconnect the sender); there is no PUBACK to wait for.
        dev.publish(f"{ROOT}/dev/devA/snapshot", b"\xff\xd8" + b"\0" * (5 * 1024 * 1024), qos=0)
        dev.disconnected.wait(1.0)  # the broker closes the connection of a too-large packet's sender
        other.publish(f"{ROOT}/dev/devB/snapshot", b"\xff\xd8marker")
        assert hub.until(f"{ROOT}/dev/devB/snapshot") == []


# --------------------------------------------------------------------------- the hub's own client behind the ACL


@pytest.mark.parametrize("tls", [False, True], ids=["loopback", "tls"])
def test_the_hubs_own_client_connects_with_its_credential_and_receives_device_messages(
    broker: Broker, tls: bool
) -> None:
    from hub.messages import InboundMessage
    from hub.mqtt.client import HubMqttClient, MqttOptions
    from hub.settings import MqttUrl
    from hub.topics import INBOUND_CHANNELS, Topics

    scheme, port = ("mqtts", broker.tls_port) if tls else ("mqtt", broker.plain_port)
    url = MqttUrl(f"{scheme}://{HUB_USER}:{broker.passwords[HUB_USER]}@127.0.0.1:{port}")
    topics = Topics(ROOT)
    inbox: queue.Queue[InboundMessage] = queue.Queue()
    client = HubMqttClient(
        MqttOptions(url, f"vh-test-{int(tls)}", ca_file=broker.ca if tls else None, session_expiry_s=0),
        topics, inbox, [(topics.inbound_filter(ch), 1) for ch in INBOUND_CHANNELS], clock=SystemClock(),
    )
    client.start()
    try:
        assert client.wait_connected(5), "the hub's client was refused"
        with connected(broker, "devA", tls=True) as dev:
            dev.subscribe(topics.hub_status)  # the hub's retained `online` is allowed and readable
            assert dev.messages.get(timeout=5).payload == b"online"
            dev.publish(topics.device("devA", "heartbeat"), b'{"kind":"camera"}')
            msg = inbox.get(timeout=5)
        assert (msg.device_id, msg.channel) == ("devA", "heartbeat")
    finally:
        client.stop()


def test_hub_user_may_use_a_shared_subscription_and_a_device_may_not_read_others_through_one(
    broker: Broker,
) -> None:
    with connected(broker, HUB_USER) as hub, connected(broker, "devA", tls=True) as dev_a, \
            connected(broker, "devB", tls=True) as dev_b:
        assert not hub.subscribe(f"$share/vh/{ROOT}/dev/+/heartbeat")[0].is_failure
        dev_a.subscribe(f"$share/x/{ROOT}/dev/devB/cmd")
        dev_a.subscribe(f"$share/x/{ROOT}/dev/+/heartbeat")
        dev_a.subscribe(f"{ROOT}/dev/devA/cmd")  # for the marker
        dev_b.publish(f"{ROOT}/dev/devB/heartbeat", b"hb")
        hub.publish(f"{ROOT}/dev/devB/cmd", b'{"id":"c"}')
        hub.publish(f"{ROOT}/dev/devA/cmd", b'{"id":"marker"}')
        assert _topics(hub.until(f"{ROOT}/dev/devB/heartbeat")) == []
        assert _topics(dev_a.until(f"{ROOT}/dev/devA/cmd")) == []
