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

from hub.api.deps import (
    get_broadcasts,
    get_media,
    get_media_url_allow,
    require_admin,
    require_operator,
    require_viewer,
)
from hub.api.routes import broadcasts, media
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
    store = MediaStore(tmp / "media", "http://hub.test")
    app = FastAPI()
    for role in (require_viewer, require_operator, require_admin):
        app.dependency_overrides[role] = admin
    app.dependency_overrides[get_broadcasts] = lambda: svc
    app.dependency_overrides[get_media] = lambda: store
    app.dependency_overrides[get_media_url_allow] = lambda: ()
    app.include_router(broadcasts.router)
    app.include_router(media.router)
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", make_app())


@schema.parametrize()
@settings(max_examples=50, deadline=None)
def test_broadcast_routes_never_fail_and_answer_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
