"""The composition root's container: one MQTT readiness over every connection the hub
receives on, and clocks injected into the services (no wall-clock fallbacks)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from hub.auth import TokenStore, cli_principal
from hub.clock import ManualClock
from hub.services import MqttLinks


def _client(up: bool) -> Any:
    event = threading.Event()
    if up:
        event.set()
    return cast(Any, SimpleNamespace(connected=event))


def test_mqtt_links_are_down_before_the_hub_started() -> None:
    assert MqttLinks().connected is False


def test_mqtt_links_follow_the_paho_client_when_no_lean_receiver_is_in_use() -> None:
    assert MqttLinks(client=_client(True)).connected is True
    assert MqttLinks(client=_client(False)).connected is False


def test_mqtt_links_are_down_while_the_lean_receiver_is_down_although_paho_is_up() -> None:
    rx = threading.Event()
    links = MqttLinks(client=_client(True), receiver_connected=rx)
    assert links.connected is False
    rx.set()
    assert links.connected is True
    links.client.connected.clear()  # type: ignore[union-attr]
    assert links.connected is False


def test_token_times_and_the_audit_log_come_from_the_injected_clock(tmp_path: Path) -> None:
    clock = ManualClock(1_780_000_000.0)
    store = TokenStore(tmp_path / "hub.db", clock=clock)
    try:
        store.create("wall", "viewer")
        [info] = store.tokens()
        assert info.created_at == 1_780_000_000.0
        clock.advance(60)
        assert store.revoke(info.token_id)
        assert store.tokens()[0].revoked_at == 1_780_000_060.0
        store.audit(cli_principal(), "token.revoke", info.token_id)
        assert store.audit_log()[0]["ts"] == 1_780_000_060.0
    finally:
        store.close()
