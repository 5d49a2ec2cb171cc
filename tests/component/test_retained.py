"""Retained device messages (issue 11 item 7), against a real Mosquitto.

A broker hands every retained message to each new subscription, and the hub subscribes again
on every (re)connect: a retained `event` or `heartbeat` would be ingested again each time.
Only `status` is retained by contract (PROTOCOL §2); a retained message on any other channel
is counted as rejected with reason `retained` and never stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub import metrics
from tests.hubproc import InProcessHub, hub_settings
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component

ROOT = "vhub/v1/dev"


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def rejected_retained(kind: str) -> float:
    return sample("vh_messages_rejected_total", kind=kind, reason="retained")


def accepted(kind: str) -> float:
    return sample("vh_messages_accepted_total", kind=kind)


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def publish(port: int, topic: str, payload: bytes, *, retain: bool) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.fixture
def hub_on(tmp_path: Path, fresh_mosquitto: MosquittoServer) -> Iterator[Callable[[], InProcessHub]]:
    hubs: list[InProcessHub] = []

    def start() -> InProcessHub:
        h = InProcessHub(hub_settings(tmp_path, fresh_mosquitto.url, None)).start()
        hubs.append(h)
        return h

    yield start
    for h in hubs:
        h.stop()


def test_retained_events_and_heartbeats_are_rejected_on_every_connect_but_retained_status_counts(
    fresh_mosquitto: MosquittoServer, hub_on: Callable[[], InProcessHub]
) -> None:
    port = fresh_mosquitto.port
    event = json.dumps({"type": "tamper", "detail": {"n": 1}}).encode()
    heartbeat = json.dumps({"kind": "camera", "seq": 1, "fps": 25}).encode()
    # Published (retained) before the hub ever connects: the broker holds them.
    publish(port, f"{ROOT}/cam-ret/event", event, retain=True)
    publish(port, f"{ROOT}/cam-ret/heartbeat", heartbeat, retain=True)
    publish(port, f"{ROOT}/spk-ret/status", b"online", retain=True)

    rej_ev0, rej_hb0 = rejected_retained("event"), rejected_retained("heartbeat")
    acc_ev0, acc_hb0 = accepted("event"), accepted("heartbeat")

    hub = hub_on()
    s = hub.services
    # The retained status still sets presence.
    wait_for(lambda: s.live.status("spk-ret") == "online", "retained status to set presence")
    wait_for(lambda: rejected_retained("event") - rej_ev0 == 1, "the retained event to be rejected")
    wait_for(lambda: rejected_retained("heartbeat") - rej_hb0 == 1, "the retained heartbeat to be rejected")

    # A live (not retained) event from the same device after the retained ones: once it is
    # accepted, everything before it on that topic has been handled.
    publish(port, f"{ROOT}/cam-ret/event", json.dumps({"type": "motion", "detail": {}}).encode(), retain=False)
    wait_for(lambda: accepted("event") - acc_ev0 >= 1, "the live event to be accepted")
    assert accepted("event") - acc_ev0 == 1, "the retained event was ingested as well"
    assert accepted("heartbeat") - acc_hb0 == 0
    assert s.live.last_heartbeat("cam-ret") is None
    assert not s.alerts.is_open("tamper:cam-ret")

    # Reconnect: the broker restarts (its persistence keeps the retained messages and the hub's
    # session); the hub subscribes again and the broker replays the retained messages.
    assert s.mqtt is not None
    fresh_mosquitto.restart()
    wait_for(lambda: rejected_retained("event") - rej_ev0 == 2, "the replayed event to be rejected again")
    wait_for(lambda: rejected_retained("heartbeat") - rej_hb0 == 2, "the replayed heartbeat to be rejected again")
    publish(port, f"{ROOT}/cam-ret/event", json.dumps({"type": "motion", "detail": {}}).encode(), retain=False)
    wait_for(lambda: accepted("event") - acc_ev0 >= 2, "the second live event to be accepted")
    assert accepted("event") - acc_ev0 == 2, "a retained event was counted again after the reconnect"
    assert accepted("heartbeat") - acc_hb0 == 0
    assert s.live.status("spk-ret") == "online"
