"""Schemathesis over every route of the whole API (the real app from the composition root, on
the embedded stores, with a real admin token): no input makes any route fail with a 5xx.

The broadcast routes also have their answers checked against their schema
(test_broadcast_api_fuzz.py); here the point is breadth: registry, devices, alerts, problems,
rankings, street lights, tokens, audit, snapshots, media."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from hub.api.app import create_app
from hub.bootstrap import build_services
from hub.clock import ManualClock
from hub.registry.township_file import parse_township
from hub.settings import load_settings

pytestmark = [pytest.mark.component, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "hub" / "data" / "township.yaml"

# Built at import so schemathesis can read the schema while collecting; building starts no
# thread (the services are started by the fixture below, only when the tests run).
DATA = Path(tempfile.mkdtemp(prefix="vh-api-fuzz-"))
atexit.register(shutil.rmtree, DATA, ignore_errors=True)
SERVICES = build_services(load_settings(data_dir=DATA, influx_url=None), ManualClock(1_780_000_000.0))
# /readyz answers 503 by contract here: no broker in this test
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SERVICES)).exclude(path="/readyz")


@pytest.fixture(scope="module")
def admin_token() -> Iterator[str]:
    started = (SERVICES.registry, SERVICES.writer, SERVICES.snapshots, SERVICES.broadcasts,
               SERVICES.problems, SERVICES.lights)
    for service in started:
        service.start()  # what start_hub starts, but no MQTT: there is no broker here
    SERVICES.registry.import_township(parse_township(SAMPLE.read_text(), fmt="yaml"))
    yield SERVICES.tokens.create("fuzz", "admin")
    for service in reversed(started):
        service.stop()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_route_fails_with_a_server_error_whatever_it_is_sent(case: schemathesis.Case, admin_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=[not_a_server_error])
