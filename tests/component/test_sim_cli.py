"""`villagehub sim` (device_sim.cli.app) runs a fleet for --duration and reports JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from device_sim.cli import app
from tests.component.test_sim_support import recording
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component


def test_sim_command_runs_counted_devices_with_a_scenario_and_reports(mosquitto: MosquittoServer,
                                                                     tmp_path: Path) -> None:
    scenario = tmp_path / "faults.yaml"
    scenario.write_text("faults:\n  - {fault: drop_heartbeats, devices: [spk-0001], params: {every: 1}}\n")
    with recording(mosquitto.port) as rec:
        result = CliRunner().invoke(app, [
            "--cameras", "2", "--speakers", "1", "--villages", "2", "--broker", mosquitto.url,
            "--scenario", str(scenario), "--heartbeat-interval", "0.2", "--snapshot-interval", "0.4",
            "--resolution", "320x180", "--duration", "1.5", "--report-every", "0.5"])
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert len(lines) >= 2 and lines[-1]["final"] is True
        assert lines[0]["devices"] == 3 and "cpu_pct" in lines[0] and "heartbeat_per_s" in lines[0]
        assert len(rec.of("cam-0001", "heartbeat")) >= 3 and len(rec.of("cam-0002", "snapshot")) >= 1
        assert rec.of("spk-0001", "heartbeat") == []  # every heartbeat dropped by the scenario
        rec.wait(lambda g: g[-1].payload == b"offline", device="spk-0001", channel="status")  # stopped cleanly


def test_sim_command_explains_a_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults: [{fault: melted, devices: [cam-0001]}]\n")
    result = CliRunner().invoke(app, ["--cameras", "1", "--scenario", str(bad)])
    assert result.exit_code == 2 and "unknown fault" in result.output


def test_sim_command_without_devices_says_what_to_give() -> None:
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2 and "--township" in result.output


def test_sim_command_reads_its_log_level_from_vh_log_level_like_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    option = next(line for line in result.output.splitlines() if "--log-level" in line)
    assert "VH_LOG_LEVEL" in option
