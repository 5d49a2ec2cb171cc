"""The ledger and ranking routes through the real app, hub.api.deps and tokens of each role
(no broker: everything but the fresh camera snapshot, which the e2e test covers)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from hub.api.app import create_app
from hub.bootstrap import build_services
from hub.clock import ManualClock
from hub.messages import InboundMessage
from hub.services import Services
from hub.settings import load_settings
from hub.snapshots.synthetic import scene_jpeg

pytestmark = pytest.mark.component
SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=SH).timestamp()
TOWNSHIP = {"township": {"name": "测试乡", "villages": [
    {"id": "v01", "name": "李家村", "groups": [{"id": "v01-g1", "name": "一组", "devices": [
        {"id": "cam-a", "kind": "camera", "name": "村口"}, {"id": "spk-a", "kind": "speaker", "name": "广场"}]}]},
    {"id": "v02", "name": "王庄村", "groups": [{"id": "v02-g1", "name": "一组", "devices": [
        {"id": "cam-b", "kind": "camera", "name": "小学"}]}]},
]}}


@dataclass
class Api:
    client: TestClient
    services: Services
    clock: ManualClock
    tokens: dict[str, str]

    def call(self, method: str, path: str, role: str | None = "operator", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kw)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    clock = ManualClock(T0)
    services = build_services(load_settings(data_dir=tmp_path, influx_url=None), clock)
    services.registry.import_township(TOWNSHIP)
    assert services.snapshots is not None and services.problems is not None
    services.snapshots.start()
    services.problems.start()
    tokens = {r: services.tokens.create(f"t-{r}", r) for r in ("viewer", "operator", "admin")}  # type: ignore[arg-type]
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield Api(client, services, clock, tokens)
    services.problems.stop()
    services.snapshots.stop()
    for closing in (services.registry.close, services.alerts.close, services.tokens.close, services.store.close):
        with contextlib.suppress(Exception):
            closing()


def create(api: Api, role: str = "operator", **kw: Any) -> Any:
    return api.call("POST", "/problems", role, json={"village": "v01", "category": "environment",
                                                      "title": "河道垃圾", **kw})


def test_roles_viewer_reads_operator_writes_admin_deletes(api: Api) -> None:
    assert api.call("GET", "/problems", None).status_code == 401
    assert create(api, "viewer").status_code == 403
    r = create(api, "operator")
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert api.call("GET", "/problems", "viewer").json()["total"] == 1
    assert api.call("GET", f"/problems/{pid}", "viewer").json()["created_by"] == "t-operator"
    assert api.call("POST", f"/problems/{pid}/transitions", "viewer", json={"to": "rejected"}).status_code == 403
    assert api.call("DELETE", f"/problems/{pid}", "operator").status_code == 403
    assert api.call("GET", "/rankings", None).status_code == 401
    assert api.call("GET", "/rankings", "viewer").status_code == 200
    assert api.call("DELETE", f"/problems/{pid}", "admin").status_code == 204
    assert api.call("GET", f"/problems/{pid}", "viewer").status_code == 404
    assert api.call("DELETE", f"/problems/{pid}", "admin").status_code == 404
    audit = [(e["actor"], e["action"], e["target"]) for e in api.services.tokens.audit_log()]
    assert ("t-admin", "problem.delete", pid) in audit and ("t-operator", "problem.create", pid) in audit


def test_transitions_follow_the_state_machine_409_for_a_forbidden_one(api: Api) -> None:
    pid = create(api, owner=None).json()["id"]

    def move(to: str, **kw: Any) -> Any:
        return api.call("POST", f"/problems/{pid}/transitions", json={"to": to, **kw})

    assert move("fixed").status_code == 409
    bad = move("assigned")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "owner"
    r = move("assigned", owner="李四", deadline=T0 + 3 * 86400, note="三天内清理")
    assert r.status_code == 200 and r.json()["state"] == "assigned" and r.json()["owner"] == "李四"
    assert move("fixed").json()["state"] == "fixed"
    assert move("assigned", note="返工").json()["state"] == "assigned"  # rework
    for to in ("fixed", "verified", "closed"):
        assert move(to).status_code == 200
    closed = api.call("GET", f"/problems/{pid}", "viewer").json()
    assert closed["state"] == "closed" and closed["closed_at"] == T0
    assert [(h["from"], h["to"]) for h in closed["history"]] == [
        (None, "open"), ("open", "assigned"), ("assigned", "fixed"), ("fixed", "assigned"),
        ("assigned", "fixed"), ("fixed", "verified"), ("verified", "closed")]
    assert move("rejected").status_code == 409
    assert move("done").status_code == 422
    assert api.call("POST", "/problems/P20990101-0001/transitions", json={"to": "assigned"}).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"category": "fun"}, "category"), ({"village": "v99"}, "village"), ({"title": ""}, "title"),
    ({"deadline": "soon"}, "deadline"), ({"deadline": 1e12}, "deadline"), ({"device_id": "../etc"}, "device_id"),
    ({"group": "v02-g1"}, "group"), ({"before_from_camera": "cam-a"}, "before_from_camera"),
    ({"surprise": 1}, "surprise"), ({"device_id": "cam-zz"}, "device_id"),
])
def test_bad_create_bodies_are_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    r = create(api, **body)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


def test_a_camera_problem_takes_its_village_and_before_photo_from_the_camera(api: Api) -> None:
    snaps = api.services.snapshots
    assert snaps is not None
    snaps.offer(InboundMessage("vhub/v1/dev/cam-b/snapshot", "cam-b", "snapshot",
                               scene_jpeg("covered", width=640, height=360), 1, False, 0, T0 - 30))
    assert snaps.wait_idle(10)
    r = api.call("POST", "/problems", json={"category": "device_fault", "title": "摄像头被遮挡",
                                            "device_id": "cam-b", "before_from_camera": "cam-b",
                                            "alert_key": "camera:cam-b:covered"})
    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["village"], p["group"], p["device_id"], p["alert_key"]) == ("v02", "v02-g1", "cam-b",
                                                                        "camera:cam-b:covered")
    (photo,) = p["photos"]
    assert photo["stage"] == "before" and photo["source"] == "camera" and photo["taken_at"] == pytest.approx(T0 - 30)
    img = api.call("GET", photo["url"].removeprefix("/api/v1"), "viewer")
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    assert img.content == snaps.storage.latest("cam-b")
    assert api.call("GET", f"/problems/{p['id']}/photos/0123456789abcdef", "viewer").status_code == 404
    # and later the latest snapshot again, as an "after" photo (not fresh: no broker here)
    r = api.call("POST", f"/problems/{p['id']}/photos", json={"stage": "after", "from_camera": "cam-b"})
    assert r.status_code == 201 and r.json()["stage"] == "after"
    bad = api.call("POST", f"/problems/{p['id']}/photos", json={"stage": "after", "from_camera": "spk-a"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from_camera"
    bad = api.call("POST", f"/problems/{p['id']}/photos", json={"stage": "later", "from_camera": "cam-b"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "stage"


def test_photo_uploads_are_validated_as_jpeg(api: Api) -> None:
    pid = create(api).json()["id"]
    jpeg = scene_jpeg("ok", width=320, height=240)

    def upload(data: bytes, stage: str = "before", ctype: str = "image/jpeg", role: str = "operator") -> Any:
        return api.call("POST", f"/problems/{pid}/photos", role, files={"file": ("a.jpg", data, ctype)},
                        data={"stage": stage})

    r = upload(jpeg)
    assert r.status_code == 201 and r.json()["source"] == "upload"
    got = api.call("GET", r.json()["url"].removeprefix("/api/v1"), "viewer")
    assert got.content == jpeg
    assert upload(jpeg, role="viewer").status_code == 403
    for data, ctype, field in [(b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/jpeg", "file"),
                               (jpeg[: len(jpeg) // 2], "image/jpeg", "file"),
                               (jpeg, "image/png", "file"), (b"", "image/jpeg", "file")]:
        r = upload(data, ctype=ctype)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (ctype, r.text)
    r = upload(jpeg, stage="during")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "stage"
    huge = jpeg[:-2] + b"\0" * (8 * 1024 * 1024) + b"\xff\xd9"
    assert upload(huge).status_code == 413
    r = api.client.post(f"/api/v1/problems/{pid}/photos", content=b"x", headers={
        "Content-Type": "text/plain", "Authorization": f"Bearer {api.tokens['operator']}"})
    assert r.status_code == 415
    assert len(api.call("GET", f"/problems/{pid}", "viewer").json()["photos"]) == 1


def test_list_filters_paging_and_the_overdue_flag(api: Api) -> None:
    a = create(api, deadline=T0 + 60, owner="李四").json()["id"]
    create(api, village="v02", category="safety")
    create(api, category="sanitation")
    api.clock.advance(120)

    def ids(query: str) -> list[str]:
        r = api.call("GET", "/problems" + query, "viewer")
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["items"]]

    assert len(ids("")) == 3
    assert ids("?overdue=true") == [a]
    assert len(ids("?overdue=false")) == 2
    assert len(ids("?village=v01")) == 2 and len(ids("?category=safety")) == 1
    assert ids("?state=open&limit=1&offset=2") == [a]  # newest first
    assert api.call("GET", "/problems?state=done", "viewer").status_code == 422
    assert api.call("GET", "/problems?limit=0", "viewer").status_code == 422
    assert api.call("GET", f"/problems/{a}", "viewer").json()["overdue"] is True


def test_export_csv_and_xlsx_with_filters(api: Api) -> None:
    create(api, title="=cmd()", owner="张三")
    create(api, village="v02", title="路面破损")
    r = api.call("GET", "/problems/export?format=csv&village=v01", "viewer")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    text = r.content.decode("utf-8-sig")
    lines = text.strip().split("\r\n")
    assert lines[0].startswith("编号,村,村民组,类别,标题") and len(lines) == 2
    assert ",'=cmd()," in lines[1] and "李家村" in lines[1]
    x = api.call("GET", "/problems/export?format=xlsx", "viewer")
    assert x.status_code == 200 and "spreadsheetml" in x.headers["content-type"]
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "编号" and {r[4] for r in rows[1:]} == {"=cmd()", "路面破损"}
    assert api.call("GET", "/problems/export?format=pdf", "viewer").status_code == 422


def test_rankings_api_default_period_and_bad_period(api: Api) -> None:
    r = api.call("GET", "/rankings", "viewer").json()
    assert r["period"] == "2026-Q4" and r["start"] == "2026-10-01T00:00:00+08:00"
    assert r["weights"] == {"availability": 0.4, "alarm_ack": 0.2, "problems_on_time": 0.25,
                            "broadcast_delivery": 0.15}
    assert [i["village"] for i in r["items"]] == ["v01", "v02"]
    assert {i["name"] for i in r["items"]} == {"李家村", "王庄村"}
    item = r["items"][0]
    assert set(item["breakdown"]) == {"availability", "alarm_ack", "problems_on_time", "broadcast_delivery"}
    assert item["breakdown"]["availability"]["detail"] == "无数据" and item["score"] == 100.0
    bad = api.call("GET", "/rankings?period=2026-Q5", "viewer")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "period"
    assert api.call("GET", "/rankings?period=2026-W48", "viewer").json()["period"] == "2026-W48"
    periods = api.call("GET", "/rankings/periods", "viewer").json()
    assert periods["current"] == "2026-Q4" and periods["items"][0]["current"] is True
