"""Writes the Grafana dashboards in dashboards/grafana/dashboards/ from one description.

    python dashboards/grafana/generate.py          # rewrite the JSON files
    python dashboards/grafana/generate.py --check  # exit 1 when the committed files differ

The queries are InfluxQL against the time-series schema of PROTOCOL §9 (measurements
heartbeat, presence, snapshot, event, delivery; tags device, kind, village, village_group) plus the
street lights' `light_command` measurement (docs/lights.md).
Every panel uses the provisioned data source (uid `villagehub-influxdb`, see
provisioning/datasources/villagehub.yaml).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "influxdb", "uid": "villagehub-influxdb"}
SCHEMA_VERSION = 39

# Panel filters shared by every dashboard: `village` and `kind` template variables.
VILLAGE = "\"village\" =~ /^$village$/"
KIND = "\"kind\" =~ /^$kind$/"
DEVICE = "\"device\" =~ /^$device$/"

Panel = dict[str, Any]


def target(query: str, ref: str = "A", alias: str = "", fmt: str = "time_series") -> dict[str, Any]:
    t: dict[str, Any] = {"refId": ref, "datasource": DATASOURCE, "rawQuery": True, "query": query,
                         "resultFormat": fmt}
    if alias:
        t["alias"] = alias
    return t


def panel(kind: str, title: str, targets: list[dict[str, Any]], x: int, y: int, w: int, h: int,
          unit: str = "short", description: str = "", **extra: Any) -> Panel:
    p: Panel = {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 2, "fillOpacity": 10,
                                                  "spanNulls": False, "showPoints": "never"}
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    elif kind == "table":
        p["options"] = {"showHeader": True, "footer": {"show": False}}
    p.update(extra)
    return p


def var_query(name: str, label: str, query: str, include_all: bool = True) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE, "query": query,
        "definition": query, "refresh": 2, "includeAll": include_all, "multi": True,
        "allValue": ".*", "current": {"text": "All", "value": "$__all"} if include_all else {},
        "sort": 1,
    }


VILLAGE_VAR = var_query("village", "村 Village", 'SHOW TAG VALUES FROM "heartbeat" WITH KEY = "village"')
KIND_VAR = {
    "name": "kind", "label": "类型 Kind", "type": "custom", "query": "camera,speaker,light", "includeAll": True,
    "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"},
    "options": [],
}
DEVICE_VAR = var_query("device", "设备 Device",
                       f'SHOW TAG VALUES FROM "heartbeat" WITH KEY = "device" WHERE {VILLAGE} AND {KIND}',
                       include_all=False)


def dashboard(uid: str, title: str, description: str, panels: list[Panel], variables: list[dict[str, Any]],
              tags: list[str]) -> dict[str, Any]:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": uid, "title": title, "description": description, "tags": ["villagehub", *tags],
        "timezone": "browser", "editable": True, "graphTooltip": 1, "schemaVersion": SCHEMA_VERSION,
        "version": 1, "refresh": "30s", "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": variables}, "annotations": {"list": []}, "links": [
            {"title": "VillageHub dashboards", "type": "dashboards", "tags": ["villagehub"], "asDropdown": True},
        ],
        "panels": panels,
    }


def fleet_health() -> dict[str, Any]:
    recent = ("SELECT count(\"seq\") FROM (SELECT last(\"seq\") AS \"seq\" FROM \"heartbeat\" "
              f"WHERE time > now() - 5m AND {VILLAGE} AND \"kind\" = '%s' GROUP BY \"device\")")
    panels = [
        panel("stat", "摄像头 5 分钟内有心跳 · Cameras reporting (5 min)", [target(recent % "camera")], 0, 0, 6, 4),
        panel("stat", "广播终端 5 分钟内有心跳 · Speakers reporting (5 min)", [target(recent % "speaker")], 6, 0, 6, 4),
        panel("stat", "掉线次数 · Offline transitions",
              [target(f"SELECT count(\"online\") FROM \"presence\" WHERE \"online\" = false AND {VILLAGE} AND {KIND} AND $timeFilter")],
              12, 0, 6, 4),
        panel("stat", "心跳丢失 · Heartbeats lost",
              [target("SELECT sum(\"lost\") FROM (SELECT spread(\"seq\") + 1 - count(\"seq\") AS \"lost\" FROM \"heartbeat\" "
                      f"WHERE {VILLAGE} AND {KIND} AND $timeFilter GROUP BY \"device\", time(1h))")],
              18, 0, 6, 4, description="seq gaps (PROTOCOL §3): spread(seq) + 1 − count(seq) per device and hour"),
        panel("timeseries", "心跳 / 分钟 · Heartbeats per interval", [target(
            f"SELECT count(\"seq\") FROM \"heartbeat\" WHERE {VILLAGE} AND {KIND} AND $timeFilter "
            "GROUP BY time($__interval), \"kind\" fill(0)", alias="$tag_kind")], 0, 4, 12, 8),
        panel("timeseries", "上下线 · Presence changes by reason", [target(
            f"SELECT count(\"online\") FROM \"presence\" WHERE {VILLAGE} AND {KIND} AND $timeFilter "
            "GROUP BY time($__interval), \"reason\" fill(0)", alias="$tag_reason")], 12, 4, 12, 8),
        panel("timeseries", "各村心跳 · Heartbeats by village", [target(
            f"SELECT count(\"seq\") FROM \"heartbeat\" WHERE {VILLAGE} AND {KIND} AND $timeFilter "
            "GROUP BY time($__interval), \"village\" fill(0)", alias="$tag_village")], 0, 12, 12, 8),
        panel("timeseries", "设备事件 · Device events by type", [target(
            f"SELECT count(\"detail\") FROM \"event\" WHERE {VILLAGE} AND {KIND} AND $timeFilter "
            "GROUP BY time($__interval), \"type\" fill(0)", alias="$tag_type")], 12, 12, 12, 8),
        panel("table", "最近离线 · Last presence per device", [target(
            "SELECT last(\"online\") AS \"online\", last(\"reason\") AS \"reason\" FROM \"presence\" "
            f"WHERE {VILLAGE} AND {KIND} AND $timeFilter GROUP BY \"device\", \"village\"", fmt="table")],
              0, 20, 24, 9),
    ]
    return dashboard("villagehub-fleet", "VillageHub · 设备总览 Fleet health",
                     "Presence, heartbeats and events across the township.", panels,
                     [VILLAGE_VAR, KIND_VAR], ["fleet"])


HEARTBEAT_PANELS = [
    ("rssi_dbm", "信号 · RSSI", "dBm"), ("uptime_s", "运行时长 · Uptime", "s"),
    ("temp_c", "摄像头温度 · Camera temperature", "celsius"), ("fps", "帧率 · FPS", "short"),
    ("bitrate_kbps", "码率 · Bitrate", "Kbits"), ("storage_free_pct", "存储剩余 · Storage free", "percent"),
    ("volume", "音量 · Volume", "percent"), ("amp_temp_c", "功放温度 · Amplifier temperature", "celsius"),
    ("power_w", "功率 · Power", "watt"), ("battery_pct", "电池 · Battery", "percent"),
]


def device_heartbeat() -> dict[str, Any]:
    panels = [
        panel("timeseries", "心跳丢失 · Heartbeats lost", [target(
            "SELECT spread(\"seq\") + 1 - count(\"seq\") FROM \"heartbeat\" "
            f"WHERE {DEVICE} AND $timeFilter GROUP BY time($__interval), \"device\" fill(null)",
            alias="$tag_device")], 0, 0, 12, 7, description="seq gaps per interval (PROTOCOL §3)"),
        panel("timeseries", "在线 · Online", [target(
            "SELECT last(\"online\") FROM \"presence\" "
            f"WHERE {DEVICE} AND $timeFilter GROUP BY time($__interval), \"device\" fill(previous)",
            alias="$tag_device")], 12, 0, 12, 7, unit="bool_on_off"),
    ]
    for i, (field, title, unit) in enumerate(HEARTBEAT_PANELS):
        panels.append(panel("timeseries", title, [target(
            f"SELECT mean(\"{field}\") FROM \"heartbeat\" WHERE {DEVICE} AND $timeFilter "
            "GROUP BY time($__interval), \"device\" fill(null)", alias="$tag_device")],
            (i % 2) * 12, 7 + (i // 2) * 7, 12, 7, unit=unit))
    panels.append(panel("table", "最近心跳 · Latest heartbeat", [target(
        "SELECT * FROM \"heartbeat\" WHERE " + DEVICE + " AND $timeFilter ORDER BY time DESC LIMIT 50",
        fmt="table")], 0, 7 + (len(HEARTBEAT_PANELS) + 1) // 2 * 7, 24, 9))
    return dashboard("villagehub-device", "VillageHub · 单设备心跳 Device heartbeat",
                     "Every heartbeat field of PROTOCOL §3 for the chosen devices.", panels,
                     [VILLAGE_VAR, KIND_VAR, DEVICE_VAR], ["devices"])


HEALTH_STATES = ["ok", "dark", "blurred", "covered", "frozen", "moved"]
CAMERA_VAR = var_query("device", "摄像头 Camera",
                       f'SHOW TAG VALUES FROM "snapshot" WITH KEY = "device" WHERE {VILLAGE}')


def snapshot_health() -> dict[str, Any]:
    by_health = [target(
        f"SELECT count(\"bytes\") FROM \"snapshot\" WHERE \"health\" = '{h}' AND {VILLAGE} AND {DEVICE} "
        "AND $timeFilter GROUP BY time($__interval) fill(0)", ref=chr(ord("A") + i), alias=h)
        for i, h in enumerate(HEALTH_STATES)]
    metric = ("SELECT mean(\"%s\") FROM \"snapshot\" WHERE " + VILLAGE + " AND " + DEVICE
              + " AND $timeFilter GROUP BY time($__interval), \"device\" fill(null)")
    panels = [
        panel("timeseries", "画面状态 · Snapshots by image health", by_health, 0, 0, 24, 8,
              fieldConfig={"defaults": {"unit": "short", "custom": {"drawStyle": "bars", "stacking": {"mode": "normal"},
                                                                     "fillOpacity": 80}}, "overrides": []}),
        panel("timeseries", "亮度 · Brightness", [target(metric % "brightness", alias="$tag_device")], 0, 8, 12, 8),
        panel("timeseries", "清晰度 · Sharpness", [target(metric % "sharpness", alias="$tag_device")], 12, 8, 12, 8),
        panel("timeseries", "图片大小 · Snapshot size", [target(metric % "bytes", alias="$tag_device")], 0, 16, 12, 8,
              unit="bytes"),
        panel("timeseries", "抓拍数 · Snapshots per interval", [target(
            f"SELECT count(\"bytes\") FROM \"snapshot\" WHERE {VILLAGE} AND {DEVICE} AND $timeFilter "
            "GROUP BY time($__interval), \"village\" fill(0)", alias="$tag_village")], 12, 16, 12, 8),
        panel("table", "当前画面状态 · Latest image health per camera", [target(
            "SELECT last(\"health\") AS \"health\", last(\"brightness\") AS \"brightness\", "
            "last(\"sharpness\") AS \"sharpness\", last(\"width\") AS \"width\", last(\"height\") AS \"height\" "
            f"FROM \"snapshot\" WHERE {VILLAGE} AND {DEVICE} AND $timeFilter GROUP BY \"device\", \"village\"",
            fmt="table")], 0, 24, 24, 10),
    ]
    camera_var = {**CAMERA_VAR, "includeAll": True, "current": {"text": "All", "value": "$__all"}}
    return dashboard("villagehub-snapshots", "VillageHub · 画面健康 Snapshot health",
                     "Image metrics and health (dark, blurred, covered, frozen, moved) from camera snapshots.",
                     panels, [VILLAGE_VAR, camera_var], ["cameras"])


DELIVERY_STATES = ["sent", "received", "playing", "done", "failed", "rejected", "preempted", "expired", "offline"]
BROADCAST_VAR = {"name": "broadcast", "label": "广播 Broadcast id (regex)", "type": "textbox", "query": ".*",
                 "current": {"text": ".*", "value": ".*"}, "options": []}


def broadcast_delivery() -> dict[str, Any]:
    where = f"{VILLAGE} AND \"broadcast_id\" =~ /$broadcast/ AND $timeFilter"
    by_state = [target(
        f"SELECT count(\"command_id\") FROM \"delivery\" WHERE \"state\" = '{s}' AND {where} "
        "GROUP BY time($__interval) fill(0)", ref=chr(ord("A") + i), alias=s)
        for i, s in enumerate(DELIVERY_STATES)]
    panels = [
        panel("stat", "送达完成 · Played to the end",
              [target(f"SELECT count(\"command_id\") FROM \"delivery\" WHERE \"state\" = 'done' AND {where}")], 0, 0, 6, 4),
        panel("stat", "失败 · Failed", [target(
            f"SELECT count(\"command_id\") FROM \"delivery\" WHERE \"state\" = 'failed' AND {where}")], 6, 0, 6, 4),
        panel("stat", "离线未送达 · Speaker offline when due", [target(
            f"SELECT count(\"command_id\") FROM \"delivery\" WHERE \"state\" = 'offline' AND {where}")], 12, 0, 6, 4),
        panel("stat", "被打断 · Preempted", [target(
            f"SELECT count(\"command_id\") FROM \"delivery\" WHERE \"state\" = 'preempted' AND {where}")], 18, 0, 6, 4),
        panel("timeseries", "投递状态 · Delivery states", by_state, 0, 4, 24, 9,
              fieldConfig={"defaults": {"unit": "short", "custom": {"drawStyle": "bars", "stacking": {"mode": "normal"},
                                                                     "fillOpacity": 80}}, "overrides": []}),
        panel("timeseries", "各村送达 · Done by village", [target(
            f"SELECT count(\"command_id\") FROM \"delivery\" WHERE \"state\" = 'done' AND {where} "
            "GROUP BY time($__interval), \"village\" fill(0)", alias="$tag_village")], 0, 13, 12, 8),
        panel("timeseries", "按优先级 · Deliveries by priority", [target(
            f"SELECT count(\"command_id\") FROM \"delivery\" WHERE {where} "
            "GROUP BY time($__interval), \"priority\" fill(0)", alias="P$tag_priority")], 12, 13, 12, 8),
        panel("table", "最近投递 · Recent deliveries", [target(
            f"SELECT \"broadcast_id\", \"state\", \"command_id\", \"device\", \"village\", \"priority\" FROM \"delivery\" "
            f"WHERE {where} ORDER BY time DESC LIMIT 300", fmt="table")], 0, 21, 24, 10),
    ]
    return dashboard("villagehub-broadcasts", "VillageHub · 广播投递 Broadcast delivery",
                     "Every speaker's delivery state per broadcast (PROTOCOL §7).", panels,
                     [VILLAGE_VAR, BROADCAST_VAR], ["broadcasts"])


LIGHT = f"\"kind\" = 'light' AND {VILLAGE}"
LIGHT_COMMAND_STATES = ["sent", "received", "done", "failed", "rejected", "expired", "offline"]


def _latest_count(field: str, condition: str) -> str:
    """How many lamps' latest value (last 5 min) meets `condition`."""
    return (f"SELECT count(\"{field}\") FROM (SELECT last(\"{field}\") AS \"{field}\" FROM \"heartbeat\" "
            f"WHERE time > now() - 5m AND {LIGHT} GROUP BY \"device\") WHERE {condition}")


def street_lights() -> dict[str, Any]:
    by_village = ("SELECT mean(\"%s\") FROM \"heartbeat\" WHERE " + LIGHT
                  + " AND $timeFilter GROUP BY time($__interval), \"village\" fill(null)")
    by_device = ("SELECT mean(\"%s\") FROM \"heartbeat\" WHERE \"solar\" = true AND " + LIGHT
                 + " AND $timeFilter GROUP BY time($__interval), \"device\" fill(null)")
    commands = [target(
        f"SELECT count(\"command_id\") FROM \"light_command\" WHERE \"state\" = '{st}' AND {VILLAGE} AND $timeFilter "
        "GROUP BY time($__interval) fill(0)", ref=chr(ord("A") + i), alias=st)
        for i, st in enumerate(LIGHT_COMMAND_STATES)]
    panels = [
        panel("stat", "路灯在报 · Lamps reporting (5 min)", [target(_latest_count("seq", "\"seq\" >= 0"))], 0, 0, 6, 4),
        panel("stat", "亮灯 · Lamps lit", [target(_latest_count("on", "\"on\" = true"))], 6, 0, 6, 4),
        panel("stat", "故障路灯 · Lamps with a fault", [target(_latest_count("fault", "\"fault\" != ''"))],
              12, 0, 6, 4, description="heartbeat `fault` set (led_open, driver, overheat, battery, …)"),
        panel("stat", "电池低于 20% · Battery below 20 %", [target(_latest_count("battery_pct", "\"battery_pct\" < 20"))],
              18, 0, 6, 4),
        panel("timeseries", "平均亮度 · Mean dimming level by village", [target(by_village % "level", alias="$tag_village")],
              0, 4, 12, 8, unit="percent"),
        panel("timeseries", "功率 · Mean power by village", [target(by_village % "power_w", alias="$tag_village")],
              12, 4, 12, 8, unit="watt"),
        panel("timeseries", "太阳能电池 · Solar lamps' battery", [target(by_device % "battery_pct", alias="$tag_device")],
              0, 12, 12, 8, unit="percent"),
        panel("timeseries", "太阳能充电 · Solar charging power", [target(by_device % "solar_w", alias="$tag_device")],
              12, 12, 12, 8, unit="watt"),
        panel("timeseries", "环境照度 · Ambient light", [target(by_village % "lux", alias="$tag_village")],
              0, 20, 12, 8, unit="lux"),
        panel("timeseries", "用电量 · Energy used per hour", [target(
            "SELECT sum(\"wh\") FROM (SELECT spread(\"energy_wh\") AS \"wh\" FROM \"heartbeat\" "
            f"WHERE {LIGHT} AND $timeFilter GROUP BY \"device\", time(1h)) GROUP BY time(1h)")],
              12, 20, 12, 8, unit="watth", description="spread of each lamp's energy counter per hour, summed"),
        panel("timeseries", "命令投递 · Light command deliveries", commands, 0, 28, 24, 8,
              fieldConfig={"defaults": {"unit": "short", "custom": {"drawStyle": "bars", "stacking": {"mode": "normal"},
                                                                     "fillOpacity": 80}}, "overrides": []}),
        panel("table", "路灯状态 · Latest state per lamp", [target(
            "SELECT last(\"on\") AS \"on\", last(\"level\") AS \"level\", last(\"power_w\") AS \"power_w\", "
            "last(\"battery_pct\") AS \"battery_pct\", last(\"fault\") AS \"fault\", last(\"mode\") AS \"mode\" "
            f"FROM \"heartbeat\" WHERE {LIGHT} AND $timeFilter GROUP BY \"device\", \"village\"", fmt="table")],
              0, 36, 24, 10),
        panel("table", "最近命令 · Recent light commands", [target(
            "SELECT \"batch_id\", \"action\", \"state\", \"command_id\", \"device\", \"village\" FROM \"light_command\" "
            f"WHERE {VILLAGE} AND $timeFilter ORDER BY time DESC LIMIT 300", fmt="table")], 0, 46, 24, 10),
    ]
    return dashboard("villagehub-lights", "VillageHub · 智慧路灯 Street lights",
                     "Street lights (kind light): lit, dimming, power and energy, solar batteries, faults, "
                     "command deliveries (docs/lights.md).", panels, [VILLAGE_VAR], ["lights"])


DASHBOARDS = {
    "fleet-health.json": fleet_health,
    "device-heartbeat.json": device_heartbeat,
    "snapshot-health.json": snapshot_health,
    "broadcast-delivery.json": broadcast_delivery,
    "street-lights.json": street_lights,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), ensure_ascii=False, indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [n for n, text in files.items() if not (OUT_DIR / n).is_file() or (OUT_DIR / n).read_text() != text]
        if stale:
            print("out of date: " + ", ".join(stale) + " (run python dashboards/grafana/generate.py)")
            return 1
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT_DIR / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
