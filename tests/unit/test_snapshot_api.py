"""The snapshot routes (PROTOCOL §7) over FastAPI's test client, with a real SnapshotService,
behind the hub's real authentication (`hub.api.deps`, a real TokenStore with a token per role)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api.deps import get_snapshots
from hub.api.routes import snapshots
from hub.clock import ManualClock
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.service import SnapshotService
from hub.snapshots.storage import SnapshotStorage
from hub.snapshots.synthetic import scene_jpeg
from tests.api_auth import bearer, install_real_auth
from tests.unit.test_snapshot_service import Events, Recorder, msg

pytestmark = pytest.mark.unit

# Real tokens of each role, made by the fixture (headers are filled in there).
VIEWER: dict[str, str] = {}
OPERATOR: dict[str, str] = {}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, SnapshotService, Recorder, ManualClock]]:
    clock, rec = ManualClock(), Recorder()
    svc = SnapshotService(
        storage=SnapshotStorage(tmp_path / "snapshots", history_min_interval_s=0), clock=clock,
        emit_points=rec.emit, alerts=rec, events=Events(rec),
        lookup=lambda d: ("v01", "g1") if d.startswith("cam") else None, publisher=rec,
        config=SnapshotConfig(workers=1),
    )
    svc.start()
    app = FastAPI()
    store, tokens = install_real_auth(app, tmp_path)
    VIEWER.clear()
    VIEWER.update(bearer(tokens["viewer"]))
    OPERATOR.clear()
    OPERATOR.update(bearer(tokens["operator"]))
    app.dependency_overrides[get_snapshots] = lambda: svc
    app.include_router(snapshots.router)
    with TestClient(app) as client:
        yield client, svc, rec, clock
    svc.stop()
    store.close()


def test_latest_snapshot_is_served_as_jpeg_and_404_before_any(setup: tuple[TestClient, SnapshotService, Recorder, ManualClock]) -> None:
    client, svc, _, clock = setup
    assert client.get("/api/v1/devices/cam1/snapshot", headers=VIEWER).status_code == 404
    f = scene_jpeg("ok", width=640, height=360)
    svc.offer(msg("cam1", f, clock))
    clock.advance(1)
    svc.offer(msg("cam1", scene_jpeg("ok", frame=1, width=640, height=360), clock))
    assert svc.wait_idle(10)
    r = client.get("/api/v1/devices/cam1/snapshot", headers=VIEWER)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    t = client.get("/api/v1/devices/cam1/thumbnail", headers=VIEWER)
    assert t.status_code == 200 and t.content[:2] == b"\xff\xd8" and len(t.content) < len(r.content)
    hist = client.get("/api/v1/devices/cam1/snapshots", headers=VIEWER).json()
    assert len(hist["items"]) >= 1 and hist["items"][0]["health"] == "ok"
    item = client.get(hist["items"][-1]["url"], headers=VIEWER)
    assert item.status_code == 200 and item.content[:2] == b"\xff\xd8"
    assert client.get("/api/v1/devices/cam1/snapshots/123", headers=VIEWER).status_code == 404
    health = client.get("/api/v1/devices/cam1/camera-health", headers=VIEWER).json()
    assert health["health"] == "ok" and health["last"]["width"] == 640
    assert [h["device"] for h in client.get("/api/v1/cameras/health", headers=VIEWER).json()] == ["cam1"]


def test_routes_need_a_token_and_the_request_needs_an_operator(setup: tuple[TestClient, SnapshotService, Recorder, ManualClock]) -> None:
    client, *_ = setup
    assert client.get("/api/v1/devices/cam1/snapshot").status_code == 401
    r = client.get("/api/v1/devices/cam1/snapshot", headers=bearer("vh_not-a-token"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/v1/devices/cam1/snapshot-request", headers=VIEWER).status_code == 403
    assert client.post("/api/v1/devices/cam1/camera-reference/reset").status_code == 401


def test_invalid_or_unknown_device_is_404(setup: tuple[TestClient, SnapshotService, Recorder, ManualClock]) -> None:
    client, *_ = setup
    assert client.get("/api/v1/devices/bad%20id/snapshot", headers=VIEWER).status_code == 404
    assert client.post("/api/v1/devices/nobody/snapshot-request", headers=OPERATOR).status_code == 404
    assert client.get("/api/v1/devices/cam1/camera-health", headers=VIEWER).status_code == 404


def test_snapshot_request_is_accepted_and_can_wait_for_the_answer(setup: tuple[TestClient, SnapshotService, Recorder, ManualClock]) -> None:
    client, svc, rec, clock = setup
    r = client.post("/api/v1/devices/cam1/snapshot-request", headers=OPERATOR)
    assert r.status_code == 202 and r.json()["state"] == "sent"
    assert json.loads(rec.sent[-1][1])["id"] == r.json()["command_id"]

    def camera(topic: str, payload: bytes) -> None:
        cmd_id = json.loads(payload)["id"]
        reply = msg("cam1", scene_jpeg("ok", frame=7, width=640, height=360), clock, cmd_id=cmd_id)
        threading.Timer(0.05, svc.offer, (reply,)).start()

    rec.on_publish = camera
    r = client.post("/api/v1/devices/cam1/snapshot-request?wait=5", headers=OPERATOR)
    assert r.status_code == 202
    body = r.json()
    assert body["state"] == "answered" and body["snapshot"]["url"] == "/api/v1/devices/cam1/thumbnail"


def test_snapshot_request_wait_is_bounded(setup: tuple[TestClient, SnapshotService, Recorder, ManualClock]) -> None:
    client, *_ = setup
    r = client.post("/api/v1/devices/cam1/snapshot-request?wait=31", headers=OPERATOR)
    assert r.status_code == 422


def test_reset_reference_is_an_operator_action(setup: tuple[TestClient, SnapshotService, Recorder, ManualClock]) -> None:
    client, *_ = setup
    assert client.post("/api/v1/devices/cam1/camera-reference/reset", headers=VIEWER).status_code == 403
    assert client.post("/api/v1/devices/cam1/camera-reference/reset", headers=OPERATOR).status_code == 204


def test_routes_are_documented_in_the_openapi_schema(setup: tuple[TestClient, SnapshotService, Recorder, ManualClock]) -> None:
    client, *_ = setup
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/devices/{device_id}/snapshot", "/api/v1/devices/{device_id}/snapshot-request",
            "/api/v1/devices/{device_id}/thumbnail", "/api/v1/devices/{device_id}/snapshots",
            "/api/v1/devices/{device_id}/snapshots/{item_id}", "/api/v1/devices/{device_id}/camera-health"} <= set(paths)
