"""Registry routes through FastAPI's TestClient on a real SQLite registry, behind the hub's real
authentication (`hub.api.deps` with a real TokenStore: one real token per role)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api.deps import get_registry
from hub.api.routes import registry as registry_routes
from hub.registry import SAMPLE_TOWNSHIP, parse_township
from hub.registry.store import Registry
from tests.api_auth import install_real_auth

pytestmark = pytest.mark.component

TOKENS: dict[str, str] = {}  # role → a real token of that role, made by the fixture


def as_(role: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}", **extra}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Registry]]:
    registry = Registry(tmp_path / "registry.db")
    app = FastAPI()
    store, tokens = install_real_auth(app, tmp_path)
    TOKENS.clear()
    TOKENS.update(tokens)
    app.dependency_overrides[get_registry] = lambda: registry
    app.include_router(registry_routes.router)
    with TestClient(app) as client:
        yield client, registry
    registry.close()
    store.close()


SAMPLE = SAMPLE_TOWNSHIP.read_bytes()


def test_admin_imports_yaml_and_viewers_see_villages_with_groups(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    r = client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("admin", **{"content-type": "application/yaml"}))
    assert r.status_code == 200, r.text
    assert r.json()["devices_added"] == 307
    villages = client.get("/api/v1/villages", headers=as_("viewer")).json()
    assert len(villages) == 12
    lijia = next(v for v in villages if v["id"] == "lijia")
    assert lijia["name"] == "李家村" and len(lijia["groups"]) == 6
    assert lijia["cameras"] + lijia["speakers"] + lijia["lights"] == len(registry.devices(village="lijia"))
    assert lijia["lights"] == 4
    assert lijia["groups"][0]["name"] == "第一村民组"
    groups = client.get("/api/v1/groups", params={"village": "qingshan"}, headers=as_("viewer")).json()
    assert [g["village"] for g in groups] == ["qingshan"] * 4
    assert len(client.get("/api/v1/groups", headers=as_("viewer")).json()) == 60
    assert client.get("/api/v1/villages/qingshan", headers=as_("viewer")).json()["quiet_hours"] == "21:30-06:00"
    assert client.get("/api/v1/villages/nowhere", headers=as_("viewer")).status_code == 404


def test_csv_upload_as_multipart_file_imports(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    csv = "kind,id,name,village\nvillage,v1,东村,\ncamera,c1,村口,v1\n"
    r = client.post("/api/v1/registry/import", files={"file": ("town.csv", csv.encode(), "text/csv")},
                    headers=as_("admin"))
    assert r.status_code == 200, r.text
    assert registry.get("c1") is not None and registry.get("c1").village == "v1"  # type: ignore[union-attr]


def test_bad_import_is_422_naming_row_and_field_and_changes_nothing(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    csv = "kind,id,name,lat\ncamera,c1,村口,north\ncamera,c2,x,1\n"
    r = client.post("/api/v1/registry/import", content=csv, headers=as_("admin", **{"content-type": "text/csv"}))
    assert r.status_code == 422
    body = r.json()
    assert body["errors"] == [{"field": "row 2, column lat", "message": "not a number", "type": "value_error"}]
    assert "row 2, column lat: not a number" in body["detail"]
    assert registry.devices() == []
    yaml_bad = SAMPLE.replace(b"kind: camera", b"kind: camara", 1)
    r = client.post("/api/v1/registry/import", content=yaml_bad, headers=as_("admin"))
    assert r.status_code == 422
    (err,) = r.json()["errors"]
    assert err["field"].startswith("line ") and err["field"].endswith(".kind")
    assert err["message"] == "must be camera, speaker or light"


def test_import_needs_admin_and_a_body(api: tuple[TestClient, Registry]) -> None:
    client, _ = api
    assert client.post("/api/v1/registry/import", content=SAMPLE).status_code == 401
    r = client.post("/api/v1/registry/import", content=SAMPLE, headers={"Authorization": "Bearer vh_not-a-token"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("viewer")).status_code == 403
    assert client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("operator")).status_code == 403
    assert client.post("/api/v1/registry/import", content=b"  ", headers=as_("admin")).status_code == 422


def test_replace_import_removes_what_the_file_omits(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("admin"))
    registry.note_unregistered("stray", "camera")
    csv = "kind,id,name\ncamera,c1,村口\n"
    r = client.post("/api/v1/registry/import", params={"replace": "true", "format": "csv"}, content=csv,
                    headers=as_("admin"))
    assert r.status_code == 200 and r.json()["devices_removed"] == 307 and r.json()["villages_removed"] == 12
    assert sorted(d.id for d in registry.devices()) == ["c1", "stray"]


def test_export_in_each_format_reads_back(api: tuple[TestClient, Registry]) -> None:
    client, _ = api
    client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("admin"))
    for fmt, media in (("yaml", "application/yaml"), ("csv", "text/csv"), ("json", "application/json")):
        r = client.get("/api/v1/registry/export", params={"format": fmt}, headers=as_("admin"))
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        town = parse_township(r.content, fmt="csv" if fmt == "csv" else "yaml")
        assert len(town.devices) == 307 and len(town.groups) == 60
    assert client.get("/api/v1/registry/export").status_code == 401
    # stream URLs may carry camera credentials: a backup of the registry is for admins
    assert client.get("/api/v1/registry/export", headers=as_("operator")).status_code == 403


def test_admin_registers_edits_and_removes_a_device(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("admin"))
    body = {"kind": "camera", "name": "新桥头", "group": "lijia-g2", "lat": 31.06, "lon": 114.39,
            "tags": {"vendor": "dahua"}, "stream_url": "rtsp://10.20.1.99:554/s"}
    r = client.put("/api/v1/devices/cam-new", json=body, headers=as_("admin"))
    assert r.status_code == 201, r.text
    assert r.json()["village"] == "lijia" and r.json()["registered"] is True
    r = client.put("/api/v1/devices/cam-new", json={**body, "name": "老桥头"}, headers=as_("admin"))
    assert r.status_code == 200 and registry.get("cam-new").name == "老桥头"  # type: ignore[union-attr]
    assert client.put("/api/v1/devices/cam-new", json=body, headers=as_("operator")).status_code == 403
    assert client.delete("/api/v1/devices/cam-new", headers=as_("admin")).status_code == 204
    assert client.delete("/api/v1/devices/cam-new", headers=as_("admin")).status_code == 404
    assert registry.get("cam-new") is None


def test_unregistered_device_put_becomes_registered_with_201(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    registry.note_unregistered("spk-stray", "speaker")
    r = client.put("/api/v1/devices/spk-stray", json={"kind": "speaker", "name": "新喇叭"}, headers=as_("admin"))
    assert r.status_code == 201 and registry.get("spk-stray").registered  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("device_id", "body", "field", "message"),
    [
        ("cam-x", {"kind": "camera", "name": "x", "village": "nowhere"}, "village", "unknown village 'nowhere'"),
        ("cam-x", {"kind": "camera", "name": "x", "village": "wangzhuang", "group": "lijia-g1"}, "group",
         "group 'lijia-g1' belongs to village 'lijia', not 'wangzhuang'"),
        ("bad.id", {"kind": "camera", "name": "x"}, "id", "must be 1-64 letters"),
    ],
)
def test_device_put_with_a_bad_reference_is_422_naming_the_field(
    api: tuple[TestClient, Registry], device_id: str, body: dict[str, object], field: str, message: str
) -> None:
    client, _ = api
    client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("admin"))
    r = client.put(f"/api/v1/devices/{device_id}", json=body, headers=as_("admin"))
    assert r.status_code == 422
    (err,) = r.json()["errors"]
    assert err["field"] == field and err["message"].startswith(message)


def test_device_put_with_a_bad_field_is_422(api: tuple[TestClient, Registry]) -> None:
    client, _ = api
    r = client.put("/api/v1/devices/cam-x", json={"kind": "toaster", "name": "x", "lat": 200}, headers=as_("admin"))
    assert r.status_code == 422
    fields = {tuple(e["loc"])[-1] for e in r.json()["detail"]}
    assert fields == {"kind", "lat"}


def test_admin_creates_a_village_and_a_group(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    r = client.put("/api/v1/villages/xintang", json={"name": "新塘村", "quiet_hours": "22:00-05:30"},
                   headers=as_("admin"))
    assert r.status_code == 200 and r.json()["groups"] == []
    r = client.put("/api/v1/groups/xintang-g1", json={"village": "xintang", "name": "第一村民组"}, headers=as_("admin"))
    assert r.status_code == 200
    assert [g.id for g in registry.groups("xintang")] == ["xintang-g1"]
    r = client.put("/api/v1/groups/xintang-g2", json={"village": "nowhere", "name": "x"}, headers=as_("admin"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "village"


def test_openapi_documents_the_import_body_types(api: tuple[TestClient, Registry]) -> None:
    client, _ = api
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/api/v1/registry/import"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/yaml", "text/csv", "multipart/form-data"}
    assert "get" not in spec["paths"].get("/api/v1/devices/{device_id}", {})  # served by routes/devices.py, not by the registry router


def test_dry_run_import_reports_and_writes_nothing(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    r = client.post("/api/v1/registry/import", params={"dry_run": "true"}, content=SAMPLE, headers=as_("admin"))
    assert r.status_code == 200 and r.json()["devices_added"] == 307
    assert registry.devices() == [] and registry.villages() == []


def test_admin_deletes_only_empty_groups_and_villages(api: tuple[TestClient, Registry]) -> None:
    client, registry = api
    client.post("/api/v1/registry/import", content=SAMPLE, headers=as_("admin"))
    r = client.delete("/api/v1/groups/lijia-g1", headers=as_("admin"))
    assert r.status_code == 409 and "still has" in r.json()["detail"]
    assert client.delete("/api/v1/villages/lijia", headers=as_("admin")).status_code == 409
    assert client.delete("/api/v1/groups/nope", headers=as_("admin")).status_code == 404
    assert client.delete("/api/v1/villages/lijia", headers=as_("viewer")).status_code == 403
    client.put("/api/v1/villages/empty", json={"name": "空村"}, headers=as_("admin"))
    assert client.delete("/api/v1/villages/empty", headers=as_("admin")).status_code == 204
    assert registry.get_village("empty") is None
