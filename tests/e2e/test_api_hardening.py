"""Issue 11 security items on the API, through `create_app` with the real `hub.api.deps`.

No servers: the app runs on the embedded SQLite store with the optional services attached
and is called in-process (TestClient, or raw ASGI where the test must see how much of a
request body the app pulled). Each test has an app of its own, so the auth-failure
limiter of one test never meets another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hub.api.app import create_app
from hub.bootstrap import build_services
from hub.clock import ManualClock
from hub.devices.heartbeat import Heartbeat, parse_heartbeat
from hub.registry.model import Device, Village
from hub.settings import load_settings
from tests.e2e.test_api_security import Api, close_services

pytestmark = pytest.mark.e2e

API = "/api/v1"
ROLES = ("viewer", "operator", "admin")
CAMERA_URL = "rtsp://admin:s3cret-pw@10.0.0.5:554/live/ch1"
CAMERA_URL_BARE = "rtsp://10.0.0.5:554/live/ch1"
CDN = "https://cdn.example.org/audio/"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(data_dir=tmp_path / "data", influx_url=None, media_url_allow=CDN)
    services = build_services(settings, ManualClock(1_780_000_000.0))
    app = create_app(services)
    tokens = {role: services.tokens.create(f"{role}-user", role) for role in ROLES}  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app, client, services, tokens)
    if services.broadcasts is not None:
        services.broadcasts.stop()
    close_services(services)


def _camera_with_credentials(api: Api) -> None:
    api.services.registry.upsert_village(Village("v01", "李家村", 30.6, 114.3))
    api.services.registry.upsert_device(
        Device("cam-1", "camera", "村口", "v01", None, 30.6, 114.3, {}, CAMERA_URL))
    payload = json.dumps({"kind": "camera", "seq": 1, "fps": 12, "stream_url": CAMERA_URL}).encode()
    hb = parse_heartbeat("cam-1", payload, api.services.clock.now())
    assert isinstance(hb, Heartbeat), hb
    api.services.live.on_heartbeat(hb)


# --------------------------------------------------------------------------- item 2: stream URLs


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_device_detail_hides_camera_credentials_below_admin(api: Api, role: str) -> None:
    _camera_with_credentials(api)
    r = api.client.get(f"{API}/devices/cam-1", headers=api.as_(role))
    assert r.status_code == 200, r.text
    assert r.json()["stream_url"] == CAMERA_URL_BARE
    assert r.json()["heartbeat"]["stream_url"] == CAMERA_URL_BARE
    assert "s3cret" not in r.text


def test_admin_sees_the_stream_url_with_its_credentials(api: Api) -> None:
    _camera_with_credentials(api)
    body = api.client.get(f"{API}/devices/cam-1", headers=api.as_("admin")).json()
    assert body["stream_url"] == CAMERA_URL and body["heartbeat"]["stream_url"] == CAMERA_URL


def test_lists_and_overview_never_carry_camera_credentials_for_a_viewer(api: Api) -> None:
    _camera_with_credentials(api)
    for path in ("/devices", "/devices?kind=camera", "/overview", "/villages", "/groups", "/cameras/health"):
        r = api.client.get(API + path, headers=api.as_("viewer"))
        assert r.status_code == 200, (path, r.text)
        assert "s3cret" not in r.text, path


def _stream_until(ws: Any, wanted: str, deadline_s: float = 10.0) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        event = json.loads(ws.receive_text())
        if event["type"] == wanted:
            return event  # type: ignore[no-any-return]
    raise AssertionError(f"no {wanted} event")


@pytest.mark.parametrize(("role", "shown"), [("viewer", CAMERA_URL_BARE), ("operator", CAMERA_URL_BARE),
                                             ("admin", CAMERA_URL)])
def test_stream_events_are_redacted_per_connection_by_role(api: Api, role: str, shown: str) -> None:
    with api.client.websocket_connect(f"{API}/stream?token={api.tokens[role]}") as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"  # subscribed from here on
        api.services.bus.publish("device_event", {
            "device": "cam-1", "type": "stream_changed",
            "detail": json.dumps({"stream_url": CAMERA_URL}), "stream_url": CAMERA_URL})
        event = _stream_until(ws, "device_event")
    assert event["data"]["stream_url"] == shown
    assert json.loads(event["data"]["detail"])["stream_url"] == shown


# --------------------------------------------------------------------------- item 3: body limits


def _asgi_post(app: FastAPI, path: str, chunks: Iterable[bytes], headers: dict[str, str]) -> tuple[int, int]:
    """POST a chunked body (no Content-Length) straight into the app: (status, chunks it pulled)."""
    pulled = 0
    status = 0
    source = iter(chunks)

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"transfer-encoding", b"chunked"), (b"content-type", b"application/json"),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return status, pulled


@pytest.mark.parametrize("path", [f"{API}/registry/import", f"{API}/media"])
@pytest.mark.parametrize("role", [None, "viewer"])
def test_a_large_body_route_refuses_the_caller_before_reading_the_body(
        api: Api, path: str, role: str | None) -> None:
    headers = api.as_(role) if role else {}
    status, pulled = _asgi_post(api.app, path, (b"x" * 65536 for _ in range(64)), headers)
    assert status == (401 if role is None else 403)
    assert pulled == 0, f"the app read {pulled} chunks of an unauthorised body"


def test_a_chunked_body_over_the_json_limit_is_413_as_soon_as_it_passes_the_limit(api: Api) -> None:
    status, pulled = _asgi_post(api.app, f"{API}/tokens", (b" " * 65536 for _ in range(64)), api.as_("admin"))
    assert status == 413
    assert pulled <= 17  # 1 MiB in 64 KiB chunks, and the one that passed it


@pytest.mark.parametrize("role", [None, "operator"])
def test_a_json_body_nested_too_deep_is_400_before_the_app_decodes_it(api: Api, role: str | None) -> None:
    """FastAPI decodes a JSON body before any dependency (authentication included) runs; a body
    nested thousands deep would take `json` to the interpreter's recursion limit (hub/jsondepth.py)."""
    headers = {**(api.as_(role) if role else {}), "Content-Type": "application/json"}
    deep = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = api.client.post(f"{API}/broadcasts", content=deep, headers=headers)
    assert (r.status_code, r.json()["detail"]) == (400, "JSON body nested deeper than 128 levels")
    # in chunks, with the brackets split across them
    status, _ = _asgi_post(api.app, f"{API}/broadcasts", (deep[i:i + 65536] for i in range(0, len(deep), 65536)),
                           api.as_(role) if role else {})
    assert status == 400
    # as deep as allowed: decoded, then judged by the route as usual
    allowed = b'{"title": ' + b"[" * 127 + b"]" * 127 + b"}"
    r = api.client.post(f"{API}/broadcasts", content=allowed, headers=headers)
    assert r.status_code == (401 if role is None else 422), r.text


def test_hub_side_tts_gets_the_json_limit_not_the_upload_limit(api: Api) -> None:
    body = json.dumps({"text": "x" * (2 * 1024 * 1024), "lang": "zh"}).encode()
    r = api.client.post(f"{API}/media/tts", content=body,
                        headers={**api.as_("operator"), "Content-Type": "application/json"})
    assert r.status_code == 413, r.text


@pytest.mark.parametrize("path", [f"{API}/media-archive", f"{API}/media/upload", f"{API}/registry/imports"])
def test_the_large_limits_belong_to_their_routes_not_to_path_prefixes(api: Api, path: str) -> None:
    r = api.client.post(path, content=b"x" * (2 * 1024 * 1024),
                        headers={**api.as_("admin"), "Content-Type": "application/octet-stream"})
    assert r.status_code == 413, f"{path} → {r.status_code}"


def test_an_upload_within_its_limit_still_works(api: Api) -> None:
    import math
    import struct
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(8000)))
    data = buf.getvalue() * 1  # ~16 KB
    r = api.client.post(f"{API}/media", files={"file": ("tone.wav", data, "audio/wav")},
                        headers=api.as_("operator"))
    assert r.status_code == 201, r.text


# --------------------------------------------------------------------------- item 4: the limiter


def test_a_valid_token_is_never_blocked_by_the_failure_limiter(api: Api) -> None:
    codes = [api.client.get(f"{API}/overview", headers={"Authorization": f"Bearer bad-{i}"}).status_code
             for i in range(40)]
    assert codes[0] == 401 and codes[-1] == 429  # failures from this address are limited …
    r = api.client.get(f"{API}/overview", headers=api.as_("viewer"))
    assert r.status_code == 200, r.text  # … a valid token from the same address is not


def test_websocket_auth_failures_count_in_the_same_limiter(api: Api) -> None:
    limit = api.services.auth_failures.limit
    for i in range(limit):
        with contextlib.suppress(WebSocketDisconnect), \
                api.client.websocket_connect(f"{API}/stream?token=bad-{i}") as ws:
            ws.receive_text()
    r = api.client.get(f"{API}/overview", headers={"Authorization": "Bearer bad-http"})
    assert r.status_code == 429, r.status_code


@pytest.mark.parametrize("query", ["", "?token=not-a-token"])
def test_the_stream_accepts_then_closes_with_4401_on_auth_failure(api: Api, query: str) -> None:
    # Accepting first lets the browser see the close code (a refused handshake shows as 1006).
    with api.client.websocket_connect(f"{API}/stream{query}") as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 4401


# --------------------------------------------------------------------------- item 5: revoke


@pytest.mark.parametrize("bad_id", ["%", "_", "____________", "%%%%%%%%%%%%", "PREFIX8", "PREFIX11", ""])
def test_revoke_matches_the_exact_token_id_only(api: Api, bad_id: str) -> None:
    victim = api.services.tokens.tokens()[0].token_id
    bad_id = {"PREFIX8": victim[:8], "PREFIX11": victim[:11]}.get(bad_id, bad_id)
    r = api.client.post(f"{API}/tokens/{bad_id}/revoke", headers=api.as_("admin"))
    assert r.status_code in (404, 405), r.text  # "" routes nowhere
    assert all(t.revoked_at is None for t in api.services.tokens.tokens())
    for role in ROLES:
        assert api.client.get(f"{API}/whoami", headers=api.as_(role)).status_code == 200


def test_revoke_by_exact_id_revokes_that_token_and_is_audited(api: Api) -> None:
    ids = {t.name: t.token_id for t in api.services.tokens.tokens()}
    r = api.client.post(f"{API}/tokens/{ids['viewer-user']}/revoke", headers=api.as_("admin"))
    assert r.status_code == 200, r.text
    assert api.client.get(f"{API}/whoami", headers=api.as_("viewer")).status_code == 401
    assert api.client.get(f"{API}/whoami", headers=api.as_("operator")).status_code == 200
    log = api.client.get(f"{API}/audit", headers=api.as_("admin")).json()["items"]
    assert any(e["action"] == "token.revoke" and e["target"] == ids["viewer-user"] for e in log)


# --------------------------------------------------------------------------- item 6: open streams


def test_an_open_stream_of_a_revoked_token_is_closed_with_4401(api: Api) -> None:
    token_id = next(t.token_id for t in api.services.tokens.tokens() if t.name == "viewer-user")
    stop = threading.Event()

    def keep_publishing() -> None:  # gives the socket something to deliver while we wait
        while not stop.wait(0.1):
            api.services.bus.publish("tick", {})

    with api.client.websocket_connect(f"{API}/stream?token={api.tokens['viewer']}") as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"
        ticker = threading.Thread(target=keep_publishing, daemon=True)
        ticker.start()
        try:
            assert api.client.post(f"{API}/tokens/{token_id}/revoke", headers=api.as_("admin")).status_code == 200
            revoked_at = time.monotonic()
            with pytest.raises(WebSocketDisconnect) as closed:
                while time.monotonic() - revoked_at < 8:
                    ws.receive_text()
        finally:
            stop.set()
            ticker.join()
    assert closed.value.code == 4401
    assert time.monotonic() - revoked_at <= 5.5


# --------------------------------------------------------------------------- item 8: media.url


BROADCAST: dict[str, Any] = {
    "title": "防火提醒", "targets": {"all": True}, "priority": 3,
    "media": {"type": "audio", "sha256": "a" * 64, "duration_s": 12},
}


def _broadcast(api: Api, url: str) -> Any:
    body = {**BROADCAST, "media": {**BROADCAST["media"], "url": url}}
    return api.client.post(f"{API}/broadcasts", json=body, headers=api.as_("operator"))


@pytest.mark.parametrize("url", [
    "http://evil.example/a.mp3",
    "https://cdn.example.org.evil.example/audio/a.mp3",  # the allowed host as a prefix of another
    "https://cdn.example.org/audio-other/a.mp3",           # the allowed path as a prefix of another
    "https://cdn.example.org/audio/../private/a.mp3",
    "https://cdn.example.org/audio/%2e%2e/private/a.mp3",
    "https://user:pw@cdn.example.org/audio/a.mp3",
    "http://cdn.example.org/audio/a.mp3",                  # another scheme
    "http://127.0.0.1:8000/other/" + "a" * 64,             # the hub, but not its media
    "http://127.0.0.1:8000/media/" + "b" * 64,             # the hub's media, another file
])
def test_broadcast_media_url_outside_the_hub_and_the_allow_list_is_422(api: Api, url: str) -> None:
    r = _broadcast(api, url)
    assert r.status_code == 422, r.text
    assert any(e["field"] == "media.url" for e in r.json()["errors"]), r.json()


@pytest.mark.parametrize("url", [CDN + "a.mp3", CDN + "sub/dir/a.mp3", "http://127.0.0.1:8000/media/" + "a" * 64])
def test_broadcast_media_url_of_the_hub_or_the_allow_list_is_accepted(api: Api, url: str) -> None:
    r = _broadcast(api, url)
    assert r.status_code == 201, r.text


# --------------------------------------------------------------------------- item 10: audit


def _actions(api: Api) -> list[tuple[str, str | None, str]]:
    items = api.client.get(f"{API}/audit", headers=api.as_("admin")).json()["items"]
    return [(e["action"], e["target"], e["actor"]) for e in items]


def test_registry_writes_are_audited(api: Api) -> None:
    admin = api.as_("admin")
    assert api.client.put(f"{API}/villages/v01", json={"name": "李家村"}, headers=admin).status_code == 200
    assert api.client.put(f"{API}/groups/g01", json={"village": "v01", "name": "一组"},
                          headers=admin).status_code == 200
    assert api.client.put(f"{API}/devices/cam-9", json={"kind": "camera", "name": "村口", "village": "v01"},
                          headers=admin).status_code == 201
    assert api.client.delete(f"{API}/devices/cam-9", headers=admin).status_code == 204
    assert api.client.delete(f"{API}/groups/g01", headers=admin).status_code == 204
    assert api.client.delete(f"{API}/villages/v01", headers=admin).status_code == 204
    town = "kind,id,name,village\nvillage,v2,东村,\ncamera,c2,路口,v2\n"
    assert api.client.post(f"{API}/registry/import?dry_run=true", content=town,
                           headers={**admin, "Content-Type": "text/csv"}).status_code == 200
    assert api.client.post(f"{API}/registry/import", content=town,
                           headers={**admin, "Content-Type": "text/csv"}).status_code == 200
    got = [(a, t) for a, t, who in _actions(api) if who == "admin-user"]
    for want in [("registry.village.put", "v01"), ("registry.group.put", "g01"), ("registry.device.put", "cam-9"),
                 ("registry.device.delete", "cam-9"), ("registry.group.delete", "g01"),
                 ("registry.village.delete", "v01"), ("registry.import", None)]:
        assert want in got, f"{want} not in {got}"
    assert sum(1 for a, _ in got if a == "registry.import") == 1  # a dry run writes nothing


def test_a_refused_registry_write_is_not_audited(api: Api) -> None:
    r = api.client.put(f"{API}/devices/cam-9", json={"kind": "camera", "name": "x", "village": "nowhere"},
                       headers=api.as_("admin"))
    assert r.status_code == 422
    assert not [a for a, _, _ in _actions(api) if a.startswith("registry.")]


def test_viewers_cannot_write_audit_entries(api: Api) -> None:
    r = api.client.post(f"{API}/audit", json={"action": "emergency.confirm", "target": "x"},
                        headers=api.as_("viewer"))
    assert r.status_code == 403
    assert not [a for a, _, _ in _actions(api) if a.startswith("ui.")]


def test_operator_audit_entries_are_recorded_and_rate_limited(api: Api) -> None:
    codes = [api.client.post(f"{API}/audit", json={"action": "emergency.confirm", "target": str(i)},
                             headers=api.as_("operator")).status_code for i in range(80)]
    assert codes[0] == 201 and codes[-1] == 429
    recorded = [a for a, _, _ in _actions(api) if a == "ui.emergency.confirm"]
    assert 0 < len(recorded) == codes.count(201) < 80


def test_registry_csv_export_escapes_formula_cells_and_imports_back(api: Api) -> None:
    admin = api.as_("admin")
    api.client.put(f"{API}/villages/v01", json={"name": "=HYPERLINK(\"http://x\")", "lat": 30.5, "lon": -114.25},
                   headers=admin)
    api.client.put(f"{API}/devices/cam-9", json={"kind": "camera", "name": "@SUM(1)", "village": "v01",
                                                "tags": {"note": "+cmd", "pole": "-7"}}, headers=admin)
    exported = api.client.get(f"{API}/registry/export?format=csv", headers=admin).text
    cells = [c for row in csv.reader(io.StringIO(exported)) for c in row]
    assert "'=HYPERLINK(\"http://x\")" in cells and "'@SUM(1)" in cells and "'+cmd" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]
    assert "-114.25" in cells and "-7" in cells  # plain numbers are left as numbers
    api.client.delete(f"{API}/devices/cam-9", headers=admin)
    r = api.client.post(f"{API}/registry/import", content=exported, headers={**admin, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert api.services.registry.get_village("v01").name == "=HYPERLINK(\"http://x\")"  # type: ignore[union-attr]
    dev = api.services.registry.get("cam-9")
    assert dev is not None and dev.name == "@SUM(1)" and dev.tags == {"note": "+cmd", "pole": "-7"}


def test_acknowledging_an_alert_by_an_id_sqlite_cannot_hold_is_422_not_a_crash(api: Api) -> None:
    alert = api.services.alerts.raise_alert("camera:cam-x:covered", device_id="cam-x", type="covered",
                                            severity="warning", message="画面遮挡", ts=1_780_000_000.0)
    ok = api.client.post(f"/api/v1/alerts/{alert.id}/ack", headers=api.as_("operator"))
    assert ok.status_code == 200 and ok.json()["acked_by"] == "operator-user"
    assert api.client.post("/api/v1/alerts/987654/ack", headers=api.as_("operator")).status_code == 404
    huge = api.client.post(f"/api/v1/alerts/{2**70}/ack", headers=api.as_("operator"))
    assert huge.status_code == 422 and "alert_id" in huge.text
