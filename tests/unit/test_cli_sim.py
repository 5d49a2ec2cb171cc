"""`villagehub sim` is mounted lazily (the simulator loads OpenCV): arguments, help and exit codes
still go to the simulator's own CLI."""

from __future__ import annotations

from typer.testing import CliRunner

from hub.cli import app


def test_sim_help_is_the_simulators_own() -> None:
    result = CliRunner().invoke(app, ["sim", "--help"])
    assert result.exit_code == 0
    assert "--township" in result.output and "--resolution" in result.output
    assert "villagehub sim" in result.output


def test_sim_errors_and_exit_codes_come_from_the_simulator() -> None:
    result = CliRunner().invoke(app, ["sim", "--cameras", "0"])
    assert result.exit_code == 2
    assert "no devices" in result.output
    result = CliRunner().invoke(app, ["sim", "--no-such-option"])
    assert result.exit_code == 2 and "--no-such-option" in result.output


def test_hub_help_lists_sim() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "sim" in result.output
