"""Schemathesis over every route of the whole API (the real app from the composition root, on
the embedded stores, with a real admin token): no input makes any route fail with a 5xx.

The broadcast routes also have their answers checked against their schema
(test_broadcast_api_fuzz.py); here the point is breadth: registry, devices, alerts, problems,
rankings, street lights, tokens, audit, snapshots, media."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from hub.api.app import create_app
from hub.bootstrap import build_services
from hub.clock import ManualClock
from hub.registry.township_file import parse_township
from hub.settings import load_settings

pytestmark = [pytest.mark.component, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "hub" / "data" / "township.yaml"


def make_app() -> tuple[FastAPI, str]:
    data = Path(tempfile.mkdtemp(prefix="vh-api-fuzz-"))
    services = build_services(load_settings(data_dir=data, influx_url=None),
                              ManualClock(1_780_000_000.0))
    for service in (services.registry, services.writer, services.snapshots, services.broadcasts,
                    services.problems, services.lights):
        service.start()  # what start_hub starts, but no MQTT: there is no broker here
    services.registry.import_township(parse_township(SAMPLE.read_text(), fmt="yaml"))
    token = services.tokens.create("fuzz", "admin")
    return create_app(services), token


APP, TOKEN = make_app()
# /readyz answers 503 by contract here: no broker in this test
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/readyz")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_route_fails_with_a_server_error_whatever_it_is_sent(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
