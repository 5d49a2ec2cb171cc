"""Schemathesis over the broadcast and media routes: no input makes them fail with a 5xx,
and every answer matches the OpenAPI schema they publish."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from hub.api.routes.broadcasts import build_router
from hub.api.routes.media import build_router as build_media_router
from hub.broadcasts import BroadcastService, MediaStore, Principal, SpeakerRef
from hub.clock import ManualClock

pytestmark = [pytest.mark.component, pytest.mark.slow]


def admin() -> Principal:
    return Principal("fuzz", "admin")


def make_app() -> FastAPI:
    tmp = Path(tempfile.mkdtemp(prefix="vh-bc-fuzz-"))
    svc = BroadcastService(tmp / "broadcasts.db", ManualClock(),
                           lambda: [SpeakerRef("s1", "v01", "g1")], lambda _d: True,
                           lambda *_a, **_k: None)
    app = FastAPI()
    app.include_router(build_router(svc, admin, admin))
    app.include_router(build_media_router(MediaStore(tmp / "media", "http://hub.test"), admin))
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", make_app())


@schema.parametrize()
@settings(max_examples=50, deadline=None)
def test_broadcast_routes_never_fail_and_answer_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
