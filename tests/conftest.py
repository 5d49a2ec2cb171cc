"""Shared fixtures: real Mosquitto and InfluxDB started on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Keep OpenCV from allocating huge images anywhere in the test process.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(40_000_000))

from tests.servers import InfluxServer, MosquittoServer, in_ci


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path_factory.mktemp("influxdb")).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker of the test's own, for tests that restart or reconfigure it."""
    server = MosquittoServer(tmp_path / "mosquitto").start()
    yield server
    server.stop()


@pytest.fixture
def fresh_influxdb(tmp_path: Path) -> Iterator[InfluxServer]:
    """An InfluxDB of the test's own, for tests that kill or restart it."""
    server = InfluxServer(tmp_path / "influxdb").start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- CI: nothing skips silently

# Skips that are not about the machine but about the test's own parameters (a parametrized case
# that does not apply). Everything else that skips under CI=true is reported as a failure.
CI_ALLOWED_SKIPS: tuple[tuple[str, str], ...] = ()


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true a skipped test is a failed test: a machine that cannot run a test (no
    root, a missing binary, no browser) must show up red in CI, not as an `s` in the summary."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    if any(item.nodeid.startswith(node) and reason.startswith(why) for node, why in CI_ALLOWED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, which must run every test: {reason}"
