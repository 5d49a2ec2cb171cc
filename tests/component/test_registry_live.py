"""A running hub (real Mosquitto, embedded store) follows registry edits made by the CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.registry import SAMPLE_TOWNSHIP
from hub.registry import store as store_module
from hub.registry.cli import app as registry_cli
from tests.hubproc import InProcessHub, hub_settings
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component


@pytest.fixture
def hub(tmp_path: Path, mosquitto: MosquittoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessHub]:
    monkeypatch.setattr(store_module, "POLL_S", 0.1)
    h = InProcessHub(hub_settings(tmp_path, mosquitto.url, None)).start()
    yield h
    h.stop()


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_cli_import_and_edits_show_in_the_running_hub_api(
    hub: InProcessHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VH_DATA_DIR", str(hub.settings.data_dir))
    runner = CliRunner()
    assert runner.invoke(registry_cli, ["import", str(SAMPLE_TOWNSHIP)]).exit_code == 0

    def villages() -> list[Any]:
        status, body = hub.api("GET", "/api/v1/villages")
        return body if status == 200 else []

    assert len(wait_for(lambda: len(villages()) == 12 and villages())) == 12
    added = runner.invoke(registry_cli, ["add-device", "cam-cli", "--kind", "camera", "--name", "新路口",
                                         "--village", "lijia"])
    assert added.exit_code == 0, added.output
    assert wait_for(lambda: hub.services.registry.get("cam-cli") is not None)
    status, body = hub.api("GET", "/api/v1/devices/cam-cli")
    assert status == 200 and body["village"] == "lijia" and body["name"] == "新路口"
