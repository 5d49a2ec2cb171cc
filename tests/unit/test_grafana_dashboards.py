"""The Grafana dashboards and provisioning files, validated structurally (no Grafana server here),
and every InfluxQL query parsed and run by the real InfluxDB against PROTOCOL §9 points."""

from __future__ import annotations

import importlib.util
import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.servers import InfluxServer

GRAFANA = Path(__file__).resolve().parents[2] / "dashboards" / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE_UID = "villagehub-influxdb"

# PROTOCOL §9: measurement → (tags, fields the dashboards may use)
SCHEMA: dict[str, tuple[set[str], set[str]]] = {
    "heartbeat": ({"device", "kind", "village", "village_group"},
                  {"seq", "interval_s", "uptime_s", "rssi_dbm", "fw", "fps", "bitrate_kbps", "temp_c",
                   "storage_free_pct", "recording", "stream_url", "volume", "state", "playing", "amp_temp_c",
                   "power_w", "mains", "battery_pct",
                   "on", "level", "energy_wh", "solar", "solar_w", "lux", "fault", "mode"}),
    "presence": ({"device", "kind", "village", "village_group"}, {"online", "reason"}),
    "snapshot": ({"device", "village", "village_group"},
                 {"brightness", "sharpness", "health", "bytes", "width", "height"}),
    "event": ({"device", "kind", "village", "village_group", "type"}, {"detail"}),
    "delivery": ({"device", "village", "village_group", "priority"}, {"broadcast_id", "command_id", "state"}),
    "light_command": ({"device", "village", "village_group", "action"}, {"batch_id", "command_id", "state"}),
}
KEYWORDS = {"time", "now"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def panels_of(dash: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dash["panels"])


def queries_of(dash: dict[str, Any]) -> list[str]:
    return [t["query"] for p in panels_of(dash) for t in p["targets"]]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.unit


def test_the_four_dashboards_of_issue_6_and_street_lights_exist() -> None:
    titles = " ".join(load(p)["title"] for p in DASHBOARD_FILES)
    for words in ("Fleet health", "Device heartbeat", "Snapshot health", "Broadcast delivery", "Street lights"):
        assert words in titles


def test_committed_dashboards_match_the_generator() -> None:
    gen = load_generator()
    for name, text in gen.render().items():
        assert (GRAFANA / "dashboards" / name).read_text() == text, f"{name} is stale: run generate.py"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_has_grafana_required_keys(path: Path) -> None:
    dash = load(path)
    for key in ("uid", "title", "panels", "schemaVersion", "time", "templating"):
        assert key in dash, key
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dash["uid"])
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 30
    assert "id" not in dash or dash["id"] is None  # provisioned dashboards must not pin a database id


def test_dashboard_uids_are_unique() -> None:
    uids = [load(p)["uid"] for p in DASHBOARD_FILES]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_panels_have_unique_ids_and_fit_the_24_column_grid_without_overlap(path: Path) -> None:
    panels = panels_of(load(path))
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_panel_and_target_uses_the_provisioned_datasource(path: Path) -> None:
    for p in panels_of(load(path)):
        assert p["type"] in {"timeseries", "stat", "table"}
        assert p["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DATASOURCE_UID
            assert t["rawQuery"] is True and t["query"].startswith("SELECT ")


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_queries_use_only_schema_measurements_tags_and_fields(path: Path) -> None:
    for q in queries_of(load(path)):
        measurements = re.findall(r'FROM "(\w+)"', q)
        assert measurements, q
        for m in measurements:
            assert m in SCHEMA, f"unknown measurement {m} in {q}"
        tags = set().union(*(SCHEMA[m][0] for m in measurements))
        fields = set().union(*(SCHEMA[m][1] for m in measurements))
        for ident in re.findall(r'"(\w+)"', q):
            assert ident in tags | fields | set(SCHEMA) | KEYWORDS or ident in {"lost", "seq"} \
                or re.search(rf'AS "{ident}"', q), f"{ident!r} is not in PROTOCOL §9 ({q})"
        assert '"group"' not in q  # GROUP is an InfluxQL keyword: the tag is village_group


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_queries_are_bounded_by_the_time_picker_and_use_defined_variables(path: Path) -> None:
    dash = load(path)
    defined = {v["name"] for v in dash["templating"]["list"]}
    for q in queries_of(dash):
        assert "$timeFilter" in q or "now() - " in q, q
        if "GROUP BY time(" in q and "time(1h)" not in q:
            assert "GROUP BY time($__interval)" in q, q
        used = set(re.findall(r"\$(\w+)", q)) - {"timeFilter", "__interval", "tag_kind", "tag_reason",
                                                  "tag_village", "tag_type", "tag_device", "tag_priority"}
        assert used <= defined, f"undefined variables {used - defined} in {q}"
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"]["uid"] == DATASOURCE_UID
            assert v["query"].startswith("SHOW TAG VALUES")


def test_datasource_provisioning_names_the_uid_the_dashboards_use() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "villagehub.yaml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["uid"] == DATASOURCE_UID and ds["type"] == "influxdb"
    assert ds["jsonData"]["dbName"] == "villagehub"  # VH_INFLUX_DB default
    assert ds["url"].startswith("${") or ds["url"].startswith("http")


def test_dashboard_provider_points_where_docker_compose_mounts_the_json() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "villagehub.yaml").read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    compose = (GRAFANA.parents[1] / "docker-compose.yml").read_text()
    assert f"./dashboards/grafana/dashboards:{path}" in compose
    assert "./dashboards/grafana/provisioning:/etc/grafana/provisioning" in compose


# ---------- every query, run by the real InfluxDB ----------

CHECK_DB = "grafana_check"  # a database of this test's own: other tests' counts stay untouched


def influx_write(server: InfluxServer, lines: list[str]) -> None:
    req = urllib.request.Request(f"{server.url}/write?db={CHECK_DB}&precision=s", data="\n".join(lines).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204


def influx_create_db(server: InfluxServer) -> None:
    q = urllib.parse.urlencode({"q": f"CREATE DATABASE {CHECK_DB}"})
    req = urllib.request.Request(f"{server.url}/query?{q}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def substitute(q: str) -> str:
    return (q.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "1m")
            .replace("/^$village$/", "/^.*$/").replace("/^$kind$/", "/^.*$/")
            .replace("/^$device$/", "/^.*$/").replace("/$broadcast/", "/.*/"))


@pytest.mark.component
def test_every_dashboard_query_runs_on_influxdb_and_finds_protocol_points(influxdb: InfluxServer) -> None:
    influx_create_db(influxdb)
    now = int(time.time())
    tags = "device=cam-1,kind=camera,village=lijia,village_group=lijia-g1"
    influx_write(influxdb, [
        f"heartbeat,{tags} seq=1i,fps=25,temp_c=41.5,rssi_dbm=-60i,uptime_s=100i {now - 120}",
        f"heartbeat,{tags} seq=3i,fps=24,temp_c=41.7,rssi_dbm=-61i,uptime_s=160i {now - 60}",
        f"heartbeat,device=spk-1,kind=speaker,village=lijia,village_group=lijia-g1 seq=7i,volume=70i,power_w=12.5 {now - 60}",
        f'presence,{tags} online=false,reason="will" {now - 30}',
        f'event,{tags},type=tamper detail="{{}}" {now - 30}',
        f'snapshot,device=cam-1,village=lijia,village_group=lijia-g1 brightness=120,sharpness=80,health="ok",bytes=30000i,width=1280i,height=720i {now - 20}',
        f'delivery,device=spk-1,village=lijia,village_group=lijia-g1,priority=3 broadcast_id="b1",command_id="c1",state="done" {now - 10}',
        f'heartbeat,device=lamp-1,kind=light,village=lijia,village_group=lijia-g1 seq=1i,on=true,level=80i,'
        f'power_w=24,energy_wh=1000.5,mains=false,solar=true,battery_pct=18.5,solar_w=0,lux=0.2,temp_c=20,'
        f'fault="led_open",mode="auto" {now - 30}',
        f'light_command,device=lamp-1,village=lijia,village_group=lijia-g1,action=on batch_id="lb-1",'
        f'command_id="lt-1",state="done" {now - 10}',
    ])
    for path in DASHBOARD_FILES:
        dash = load(path)
        for q in queries_of(dash) + [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]:
            sql = substitute(q)
            assert "$" not in sql.replace("$/", "").replace("^.*$", ""), sql
            influxdb.query(sql, db=CHECK_DB)  # raises on a parse or execution error
    lost = influxdb.query(substitute(
        'SELECT spread("seq") + 1 - count("seq") FROM "heartbeat" WHERE "device" = \'cam-1\' AND $timeFilter'),
        db=CHECK_DB)
    values: Any = lost[0]["values"]
    assert values[0][1] == 1  # seq 1 then 3: one heartbeat lost
    lights = load(GRAFANA / "dashboards" / "street-lights.json")
    for p in panels_of(lights):
        if p["type"] == "stat":  # one lamp: reporting, lit, faulty, battery low
            got: Any = influxdb.query(substitute(p["targets"][0]["query"]), db=CHECK_DB)
            assert got and got[0]["values"][0][1] == 1, p["title"]
