"""The broadcast and media routes through FastAPI's TestClient, behind the hub's real
authentication (`hub.api.deps` with a real TokenStore: one real token per role)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api.deps import get_broadcasts, get_media_url_allow
from hub.api.routes import broadcasts as broadcast_routes
from hub.api.routes import media as media_routes
from hub.broadcasts import BroadcastService, MediaStore, SpeakerRef
from hub.clock import ManualClock
from tests.api_auth import install_real_auth

pytestmark = pytest.mark.component

SH = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=SH).timestamp()
TOKENS: dict[str, str] = {}  # role → a real token of that role (named "<role>-user"), made by the fixture


def as_(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


BODY: dict[str, Any] = {
    "title": "冬季防火提醒",
    "media": {"type": "tts", "text": "天干物燥，小心火烛。", "lang": "zh"},
    "targets": {"all": False, "villages": ["v01"], "groups": [], "devices": []},
    "priority": 3, "volume": 70, "repeat": 2,
    "schedule": {"start": "2026-12-01T07:30:00+08:00", "rrule": "FREQ=DAILY;COUNT=7"},
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, BroadcastService, list[bytes]]]:
    sent: list[bytes] = []
    media = MediaStore(tmp_path / "media", "http://hub.example:8000")
    svc = BroadcastService(
        tmp_path / "broadcasts.db", ManualClock(NOON), lambda: [SpeakerRef("s1", "v01", "g1")],
        lambda _d: True, lambda t, p, qos=1, retain=False, properties=None: sent.append(p),
        media=media)
    app = FastAPI()
    store, tokens = install_real_auth(app, tmp_path)
    TOKENS.clear()
    TOKENS.update(tokens)
    app.dependency_overrides[get_broadcasts] = lambda: svc
    app.dependency_overrides[get_media_url_allow] = lambda: ()
    app.include_router(broadcast_routes.router)
    app.include_router(media_routes.router)
    with TestClient(app) as client:
        yield client, svc, sent
    svc.stop()
    store.close()


def test_operator_schedules_the_protocol_example_and_reads_it_back(api: Any) -> None:
    client, _svc, _ = api
    r = client.post("/api/v1/broadcasts", json=BODY, headers=as_("operator"))
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    one = client.get(f"/api/v1/broadcasts/{bid}", headers=as_("viewer")).json()
    assert one["status"] == "active" and one["repeat"] == 2
    assert len(one["upcoming"]) == 5
    assert datetime.fromtimestamp(one["next_at"], SH).strftime("%m-%d %H:%M") == "12-02 07:30"
    listed = client.get("/api/v1/broadcasts", headers=as_("viewer")).json()["items"]
    assert [b["id"] for b in listed] == [bid]


def test_operator_is_refused_an_emergency_broadcast(api: Any) -> None:
    client, _, _ = api
    r = client.post("/api/v1/broadcasts", json={**BODY, "priority": 8}, headers=as_("operator"))
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]
    assert client.post("/api/v1/broadcasts", json={**BODY, "priority": 9, "schedule": None},
                       headers=as_("admin")).status_code == 201


def test_viewer_cannot_schedule_and_no_token_is_401(api: Any) -> None:
    client, _, _ = api
    assert client.post("/api/v1/broadcasts", json=BODY, headers=as_("viewer")).status_code == 403
    assert client.post("/api/v1/broadcasts", json=BODY).status_code == 401
    r = client.post("/api/v1/broadcasts", json=BODY, headers={"Authorization": "Bearer vh_not-a-token"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/broadcasts").status_code == 401
    assert client.post("/api/v1/media/tts", json={"text": "x"}, headers=as_("viewer")).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"priority": 10}, "priority"),
        ({"volume": -1}, "volume"),
        ({"colour": "red"}, "colour"),
        ({"media": {"type": "tts"}}, "text"),
        ({"media": {"type": "video", "url": "x"}}, "media"),
        ({"targets": {"villages": ["bad id!"]}}, "villages"),
        ({"targets": {}}, "targets"),
        ({"schedule": {"start": "tomorrow"}}, "start"),
        ({"schedule": {"start": "2026-12-01T07:30:00+08:00", "rrule": "FREQ=OFTEN"}}, "rrule"),
        ({"schedule": {"tz": "Mars/Base"}}, "tz"),
        ({"schedule": {"start": "2026-12-01T07:30:00+08:00",
                       "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}}, "rrule"),
        ({"schedule": {"start": "0001-01-01T00:00:00"}}, "start"),
        ({"schedule": {"start": "2020-01-01T07:30:00+08:00"}}, "schedule"),
    ],
)
def test_bad_body_is_422_naming_the_field(api: Any, change: dict[str, Any], field: str) -> None:
    client, _, _ = api
    r = client.post("/api/v1/broadcasts", json={**BODY, **change}, headers=as_("admin"))
    assert r.status_code == 422, r.text
    assert any(field in [str(x) for x in e["loc"]] for e in r.json()["detail"]), r.json()


def test_unknown_broadcast_is_404(api: Any) -> None:
    client, _, _ = api
    assert client.get("/api/v1/broadcasts/nope", headers=as_("viewer")).status_code == 404
    assert client.post("/api/v1/broadcasts/nope/cancel", headers=as_("admin")).status_code == 404


def test_cancel_by_operator_and_emergency_cancel_needs_admin(api: Any) -> None:
    client, _, _ = api
    bid = client.post("/api/v1/broadcasts", json=BODY, headers=as_("operator")).json()["id"]
    r = client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=as_("operator"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["cancelled_by"] == "operator-user"
    eid = client.post("/api/v1/broadcasts", json={**BODY, "priority": 9},
                      headers=as_("admin")).json()["id"]
    assert client.post(f"/api/v1/broadcasts/{eid}/cancel", headers=as_("operator")).status_code == 403


def test_calendar_lists_the_week_of_occurrences(api: Any) -> None:
    client, _, _ = api
    client.post("/api/v1/broadcasts", json=BODY, headers=as_("operator"))
    r = client.get("/api/v1/broadcasts/calendar",
                   params={"from": "2026-12-01T00:00:00+08:00", "to": "2026-12-31T00:00:00+08:00"},
                   headers=as_("viewer"))
    assert r.status_code == 200, r.text
    assert [i["status"] for i in r.json()["items"]] == ["scheduled"] * 6  # 12-01 07:30 has passed
    bad = client.get("/api/v1/broadcasts/calendar", params={"from": "x", "to": "1"},
                     headers=as_("viewer"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "from"]
    for weird in ("nan", "inf", "1e300"):
        r = client.get("/api/v1/broadcasts/calendar", params={"from": "0", "to": weird},
                       headers=as_("viewer"))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "to"]


def test_quiet_hours_are_set_per_village_by_an_admin(api: Any) -> None:
    client, _, _ = api
    body = {"start": "21:30", "end": "06:30"}
    assert client.put("/api/v1/broadcasts/quiet-hours/v01", json=body,
                      headers=as_("operator")).status_code == 403
    r = client.put("/api/v1/broadcasts/quiet-hours/v01", json=body, headers=as_("admin"))
    assert r.json()["villages"]["v01"] == body


def wav(tmp_path: Path) -> bytes:
    import math
    import struct
    import wave

    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(16000)))
    return path.read_bytes()


def test_uploaded_audio_is_checked_hashed_timed_and_served(api: Any, tmp_path: Path) -> None:
    client, svc, sent = api
    data = wav(tmp_path)
    r = client.post("/api/v1/media", files={"file": ("tone.wav", data, "audio/wav")},
                    headers=as_("operator"))
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["content_type"] == "audio/wav" and info["duration_s"] == pytest.approx(2.0)
    import hashlib

    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    got = client.get(f"/media/{info['sha256']}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "audio/wav"
    body = {**BODY, "media": {"type": "audio", "sha256": info["sha256"]}, "schedule": None}
    bid = client.post("/api/v1/broadcasts", json=body, headers=as_("operator")).json()["id"]
    svc.tick()
    import json

    play = json.loads(sent[-1])
    assert play["broadcast_id"] == bid and play["media"] == info["media"]
    assert play["media"]["url"] == f"http://hub.example:8000/media/{info['sha256']}"


def test_upload_that_is_not_audio_is_415_and_unknown_media_is_404(api: Any) -> None:
    client, _, _ = api
    r = client.post("/api/v1/media", files={"file": ("x.mp3", b"MZ" + b"\0" * 500, "audio/mpeg")},
                    headers=as_("operator"))
    assert r.status_code == 415
    assert client.get("/media/" + "0" * 64).status_code == 404
    body = {**BODY, "media": {"type": "audio", "sha256": "0" * 64}}
    r = client.post("/api/v1/broadcasts", json=body, headers=as_("operator"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "media", "sha256"]


def test_upload_over_the_size_limit_is_413(api: Any, tmp_path: Path) -> None:
    client, svc, _ = api
    svc.media.max_bytes = 1000
    r = client.post("/api/v1/media", files={"file": ("t.wav", wav(tmp_path), "audio/wav")},
                    headers=as_("operator"))
    assert r.status_code == 413


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_hub_side_tts_makes_a_mandarin_wav(api: Any) -> None:
    client, _, _ = api
    r = client.post("/api/v1/media/tts", json={"text": "天干物燥，小心火烛。", "lang": "zh"},
                    headers=as_("operator"))
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "audio/wav" and r.json()["duration_s"] > 1
