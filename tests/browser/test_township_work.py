"""Issue 14 on the wall screen, in real Chromium against a real hub (Mosquitto, influxd, `villagehub
serve`) with the sample township (cameras, loudspeakers and street lights) simulated by `villagehub sim`:

- a camera alarm → a problem with its before-photo → assigned → fresh after-photo from the camera →
  fixed → verified → closed, all by clicking as an operator;
- the ranking panel (红榜/黑榜 with breakdowns) and the printable A4 ranking page;
- street lamps on the map, switched on, dimmed and off by the operator, with each lamp's
  acknowledgement progress reaching done.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from tests.browser.conftest import (
    ADMIN_TOKEN,
    ARTIFACTS,
    REPO,
    EnvProcess,
    RunningHub,
    _run,
    skip_without_browser,
    villagehub,
)
from tests.servers import InfluxServer, MosquittoServer, free_port

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SNAPSHOT_S = 8.0
FAULTY_LAMP = "lamp-lijia-02"  # the simulator's lamp_fault: dark, acks on/dim `failed`


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture(scope="module")
def hub(browser_broker: MosquittoServer, influxdb: InfluxServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """`villagehub serve` with the sample township (示范乡: cameras, speakers, street lights) simulated,
    one lamp faulty."""
    skip_without_browser()
    data = tmp_path_factory.mktemp("hub14")
    port = free_port()
    env = {**os.environ, "VH_MQTT_URL": browser_broker.url, "VH_INFLUX_URL": influxdb.url,
           "VH_INFLUX_DB": "villagehub_browser14", "VH_DATA_DIR": str(data), "VH_HTTP_HOST": "127.0.0.1",
           "VH_HTTP_PORT": str(port), "VH_BOOTSTRAP_TOKEN": ADMIN_TOKEN, "VH_LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(REPO)}
    township = data / "township.yaml"
    township.write_text(_run([sys.executable, "-m", "hub.registry.sample"], env, data))
    _run(villagehub("registry", "import", str(township)), env, data)
    scenario = data / "faults.yaml"
    scenario.write_text(json.dumps({"faults": [{"fault": "lamp_fault", "devices": [FAULTY_LAMP]}]}))
    running = RunningHub(f"http://127.0.0.1:{port}", port, env, data,
                         EnvProcess(["true"], data, "unused.log"), ADMIN_TOKEN, "", "", browser_broker.port)
    running.start()
    for role in ("operator", "viewer"):
        made = running.send("POST", "/api/v1/tokens", {"name": f"browser14-{role}", "role": role})
        setattr(running, f"{role}_token", made["token"])
    sim = EnvProcess(villagehub(
        "sim", "--township", str(township), "--broker", browser_broker.url, "--scenario", str(scenario),
        "--heartbeat-interval", "5", "--snapshot-interval", str(SNAPSHOT_S),
        "--resolution", "320x180", "--report-every", "0"), data, "sim.log", env=env)
    sim.start()
    try:
        lights = wait_for(lambda: (ls := running.get("/api/v1/lights")["items"])
                          and all(x["status"] == "online" for x in ls) and ls, 60, "every simulated lamp online")
        assert len(lights) > 10
        wait_for(lambda: all(running.get("/api/v1/overview")["devices"][k]["online"]
                             == running.get("/api/v1/overview")["devices"][k]["total"] for k in ("camera", "speaker")),
                 60, "every simulated camera and speaker online")
        yield running
    finally:
        sim.stop()
        running.process.stop()


@pytest.fixture
def mqtt_client(hub: RunningHub) -> Iterator[mqtt.Client]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"browser14-{time.monotonic_ns()}")
    client.connect("127.0.0.1", hub.mqtt_port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def login(page: Any, hub: RunningHub, token: str) -> None:
    page.goto(hub.url + "/")
    page.wait_for_selector("#login-modal:not(.hidden)")
    page.fill("#login-token", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#health-link.up", timeout=15000)
    page.wait_for_function("() => window.__vh.state.devices.size > 0 && window.__vh.state.lights.size > 0", timeout=15000)


def jpeg(hub: RunningHub, path: str) -> bytes:
    req = urllib.request.Request(hub.url + path, headers={"Authorization": f"Bearer {hub.viewer_token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def camera_with_snapshot(hub: RunningHub) -> dict[str, Any]:
    cams = [d for d in hub.get("/api/v1/devices?kind=camera&status=online&limit=1000")["items"] if d["village"]]
    cam = sorted(cams, key=lambda d: d["id"])[0]

    def has_snapshot() -> bool:
        try:
            return jpeg(hub, f"/api/v1/devices/{cam['id']}/snapshot")[:2] == b"\xff\xd8"
        except OSError:
            return False

    wait_for(has_snapshot, SNAPSHOT_S * 3, f"a stored snapshot of {cam['id']}")
    return cam


def photo_loaded(page: Any, stage: str) -> None:
    page.wait_for_function(
        "s => { const img = document.querySelector(`#pb-d-${s} figure.loaded img`); return img && img.naturalWidth > 0; }",
        arg=stage, timeout=20000)


def transition(page: Any, to: str, label: str) -> None:
    button = page.locator(f'#pb-d-actions button[data-to="{to}"]')
    assert button.inner_text() == label
    button.click()
    page.wait_for_function("s => document.querySelector('#pb-d-title .pb-state')?.classList.contains('s-' + s)",
                           arg=to, timeout=10000)


def test_camera_alarm_to_closed_problem_with_before_and_after_photos(
        page: Any, hub: RunningHub, mqtt_client: mqtt.Client) -> None:
    cam = camera_with_snapshot(hub)
    login(page, hub, hub.operator_token)
    # the camera raises an alarm (PROTOCOL §5 tamper event): it shows in 告警中心 with 转整改
    mqtt_client.publish(f"vhub/v1/dev/{cam['id']}/event",
                        json.dumps({"type": "tamper", "ts": time.time(), "detail": {"reason": "covered"}}),
                        qos=1).wait_for_publish(5)
    row = page.locator("#alarm-feed li", has_text=cam["id"]).filter(has=page.locator("[data-to-problem]"))
    row.wait_for(timeout=10000)
    row.locator("[data-to-problem]").click()

    # the dialog: title from the alarm, the camera's latest snapshot as the before-photo
    page.wait_for_selector("#pb-create-modal:not(.hidden)")
    assert page.is_checked("#pb-create-form input[name=with_before]")
    assert "防拆" in page.input_value("#pb-create-form input[name=title]")
    page.fill("#pb-create-form input[name=owner]", "<b>张三</b>")  # shown as text, never as markup
    page.click("#pb-create-form button[type=submit]")

    # the ledger opens on the new problem: before-photo from the camera, state 待交办
    page.wait_for_selector("#ledger:not(.hidden) #pb-detail:not(.hidden)")
    page.wait_for_function("() => document.querySelector('#pb-d-title .pb-state.s-open')", timeout=10000)
    photo_loaded(page, "before")
    pid = page.inner_text("#pb-d-title .mono")
    problem = hub.get(f"/api/v1/problems/{pid}")
    assert (problem["device_id"], problem["village"], problem["alert_key"]) == (cam["id"], cam["village"], f"tamper:{cam['id']}")
    assert [(p["stage"], p["source"]) for p in problem["photos"]] == [("before", "camera")]
    assert "<b>张三</b>" in page.inner_text("#pb-d-info")
    assert page.locator("#pb-d-info b").count() == 0
    # the alarm row now names the problem instead of offering a second one
    page.wait_for_selector(f'#alarm-feed [data-open-problem="{pid}"]', state="attached", timeout=5000)

    # assign: owner and deadline
    page.fill("#pb-a-owner", "李四")
    page.fill("#pb-a-note", "三日内清理")
    transition(page, "assigned", "交办")
    got = hub.get(f"/api/v1/problems/{pid}")
    assert got["owner"] == "李四" and got["deadline"] > time.time()
    assert got["history"][-1]["note"] == "三日内清理"

    # the after-photo: a fresh snapshot asked from the same camera, attached when it arrives
    page.click("#pb-d-actions [data-after-photo]")
    photo_loaded(page, "after")
    after = [p for p in hub.get(f"/api/v1/problems/{pid}")["photos"] if p["stage"] == "after"]
    assert after and after[0]["source"] == "camera" and after[0]["device_id"] == cam["id"]
    assert jpeg(hub, after[0]["url"])[:2] == b"\xff\xd8"

    transition(page, "fixed", "标记已整改")
    transition(page, "verified", "验收通过")
    transition(page, "closed", "销号")
    assert page.locator("#pb-d-actions button").count() == 0  # closed is final
    final = hub.get(f"/api/v1/problems/{pid}")
    assert final["state"] == "closed" and final["closed_at"]
    assert [(h["from"], h["to"]) for h in final["history"]] == [
        (None, "open"), ("open", "assigned"), ("assigned", "fixed"), ("fixed", "verified"), ("verified", "closed")]
    assert page.locator("#pb-d-history li").count() == 5
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-problem-closed.png"))

    # the list shows it closed; the state filter finds it
    page.click("#pb-back")
    page.select_option("#pb-f-state", "closed")
    page.wait_for_selector(f'#pb-rows tr[data-problem="{pid}"] .pb-state.s-closed')


def test_problem_ledger_live_overdue_and_export(page: Any, hub: RunningHub) -> None:
    village = hub.get("/api/v1/villages")
    vid = (village["items"] if isinstance(village, dict) else village)[0]["id"]
    page.goto(hub.url + f"/?token={hub.viewer_token}")
    page.wait_for_selector("#health-link.up", timeout=15000)
    page.click('.p-alarms .ptab[data-ptab="problems"]')
    # another operator files an overdue problem: it arrives on the stream, highlighted
    created = hub.send("POST", "/api/v1/problems", {"village": vid, "category": "sanitation",
                                                     "title": "垃圾堆放<script>x</script>", "owner": "王五",
                                                     "deadline": time.time() - 3600})
    row = page.locator(f'#pb-feed li[data-problem="{created["id"]}"]')
    row.wait_for(timeout=5000)
    assert "overdue" in (row.get_attribute("class") or "")
    assert "垃圾堆放<script>x</script>" in row.inner_text()
    assert int(page.inner_text("#kpi-problems .val b")) >= 1
    # a viewer reads the ledger but cannot move problems or file them
    row.click()
    page.wait_for_selector("#pb-detail:not(.hidden)")
    page.wait_for_function("() => document.querySelector('#pb-d-history li')", timeout=5000)
    assert page.locator("#pb-d-actions button").count() == 0
    page.click("#pb-back")
    page.check("#pb-f-overdue")
    page.wait_for_selector(f'#pb-rows tr.overdue[data-problem="{created["id"]}"]')
    with page.expect_download() as dl:
        page.click("#pb-export-csv")
    path = dl.value.path()
    text = Path(path).read_text(encoding="utf-8-sig")
    assert created["id"] in text and dl.value.suggested_filename.endswith(".csv")
    with page.expect_download() as dl2:
        page.click("#pb-export-xlsx")
    assert Path(dl2.value.path()).read_bytes()[:2] == b"PK" and dl2.value.suggested_filename.endswith(".xlsx")


def test_ranking_panel_and_printable_page(page: Any, hub: RunningHub) -> None:
    ranking = hub.get("/api/v1/rankings")
    assert ranking["items"]
    page.goto(hub.url + f"/?token={hub.viewer_token}")
    page.wait_for_selector("#health-link.up", timeout=15000)
    page.click('.p-charts .ptab[data-ptab="ranking"]')
    page.wait_for_selector("#ranking .rk-board.red li")
    red = page.locator("#ranking .rk-board.red li")
    black = page.locator("#ranking .rk-board.black li")
    first = ranking["items"][0]
    assert first["name"] in red.first.inner_text() and f"{first['score']:.1f}" in red.first.inner_text()
    last = ranking["items"][-1]
    assert last["name"] in black.first.inner_text()
    assert red.count() + black.count() == min(10, len(ranking["items"]))
    # each row has a trend mark; hovering a village shows its breakdown (four components)
    assert page.locator("#ranking .rk-trend").count() == red.count() + black.count()
    red.first.hover()
    page.wait_for_selector("#rk-breakdown .rk-bd-table")
    assert page.locator("#rk-breakdown .rk-bd-table tr").count() == 4
    bd = page.inner_text("#rk-breakdown")
    for label in ("设备在线率", "告警及时确认率", "整改按期办结率", "广播送达率"):
        assert label in bd
    assert page.get_attribute("#rk-print", "href") == f"/wall/ranking.html?period={ranking['period']}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-ranking-tab.png"))

    # the printable page: same origin and token, A4, title, one row per village, the posting footer
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(hub.url + f"/wall/ranking.html?period={ranking['period']}")
    page.wait_for_selector("body[data-ready='1']", timeout=10000)
    township = hub.get("/api/v1/overview")["township"]
    assert page.inner_text("#title") == f"{township} {ranking['label']} 村庄综合评分排名"
    assert page.locator("#rank-body tr").count() == len(ranking["items"])
    assert page.locator("#rank-head th").count() == 8
    assert page.inner_text("#rank-body tr:first-child td.village") == first["name"]
    assert "张榜公示" in page.inner_text(".posting")
    page.emulate_media(media="print")
    assert not page.is_visible(".toolbar")
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi, for the picture
    page.screenshot(path=str(ARTIFACTS / "ranking-print.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    (ARTIFACTS / "ranking.pdf").write_bytes(pdf)
    assert pdf[:5] == b"%PDF-"
    assert b"/MediaBox [0 0 595" in pdf or b"/MediaBox [0 0 594" in pdf  # A4 portrait: 595 × 842 pt
    assert not violations, violations


def lamp_on_map(page: Any, lamp: str) -> bool:
    return bool(page.evaluate("""id => {
        const c = echarts.getInstanceByDom(document.getElementById('map'));
        const s = c.getOption().series.find((x) => x.name === 'lamps');
        return s && s.data.some((d) => d.id === id);
    }""", lamp))


def lamp_colour(page: Any, lamp: str) -> str:
    return str(page.evaluate("""id => {
        const c = echarts.getInstanceByDom(document.getElementById('map'));
        const s = c.getOption().series.find((x) => x.name === 'lamps');
        return s.data.find((d) => d.id === id).st;
    }""", lamp))


def run_command(page: Any, action: str) -> dict[str, Any]:
    before = page.get_attribute("#lt-progress .lt-prog-head", "data-batch") if page.locator("#lt-progress .lt-prog-head").count() else None
    page.click(f'#lights [data-lt-cmd="{action}"]')
    page.wait_for_function("b => { const h = document.querySelector('#lt-progress .lt-prog-head'); return h && h.dataset.batch !== b; }",
                           arg=before, timeout=10000)
    page.wait_for_function("""() => { const h = document.querySelector('#lt-progress .lt-prog-head');
        const chips = [...document.querySelectorAll('#lt-progress .lt-chip')];
        return h && chips.length && chips.every((c) => ['done', 'failed', 'rejected', 'expired'].some((s) => c.classList.contains(s))); }""",
                           timeout=30000)
    head = page.locator("#lt-progress .lt-prog-head")
    return {"batch": head.get_attribute("data-batch"), "done": int(head.get_attribute("data-done") or 0),
            "total": int(head.get_attribute("data-total") or 0)}


def test_lamps_on_the_map_answer_on_dim_off(page: Any, hub: RunningHub) -> None:
    lights = hub.get("/api/v1/lights")["items"]
    village = "lijia"
    lamps = sorted(x["id"] for x in lights if x["village"] == village)
    assert FAULTY_LAMP in lamps
    login(page, hub, hub.operator_token)
    # the lamps layer is on the map, the KPI counts them
    page.wait_for_function("() => window.echarts && echarts.getInstanceByDom(document.getElementById('map'))?.getOption()?.series")
    assert lamp_on_map(page, lamps[0])
    assert page.inner_text("#kpi-lights .val small") == f"/ {len(lights)}"
    page.wait_for_function(f"() => window.__vh.state.lights.get({json.dumps(FAULTY_LAMP)})?.fault", timeout=20000)
    page.wait_for_function(f"() => echarts.getInstanceByDom(document.getElementById('map')).getOption().series"
                           f".find((x) => x.name === 'lamps').data.find((d) => d.id === {json.dumps(FAULTY_LAMP)}).st === 'fault'",
                           timeout=10000)
    # the layer toggles off and on
    page.click("#lamp-layer")
    page.wait_for_function("() => !echarts.getInstanceByDom(document.getElementById('map')).getOption().series.find((x) => x.name === 'lamps').data.length")
    page.click("#lamp-layer")
    page.wait_for_function(f"() => echarts.getInstanceByDom(document.getElementById('map')).getOption().series"
                           f".find((x) => x.name === 'lamps').data.some((d) => d.id === {json.dumps(lamps[0])})")

    # the operator switches the village's lamps on: every lamp acks, the faulty one fails
    page.click("#btn-lights")
    page.wait_for_selector("#lights:not(.hidden) #lt-list li")
    page.select_option("#lt-village", village)
    page.fill("#lt-level", "80")
    result = run_command(page, "on")
    batch = hub.get(f"/api/v1/lights/commands/{result['batch']}")
    states = {d["device"]: d["state"] for d in batch["deliveries"]}
    assert set(states) == set(lamps) and batch["action"] == "on"
    assert states[FAULTY_LAMP] == "failed"
    assert all(s == "done" for d, s in states.items() if d != FAULTY_LAMP)
    assert (result["done"], result["total"]) == (len(lamps) - 1, len(lamps))
    assert page.locator(f'#lt-progress .lt-chip.failed[data-device="{FAULTY_LAMP}"]').count() == 1
    healthy = next(x for x in lamps if x != FAULTY_LAMP)
    wait_for(lambda: lamp_colour(page, healthy) == "on", 15, "a lit lamp drawn lit")

    # one lamp dimmed, then the village switched off
    page.select_option("#lt-lamp", healthy)
    page.fill("#lt-level", "30")
    result = run_command(page, "dim")
    assert (result["done"], result["total"]) == (1, 1)
    assert hub.get(f"/api/v1/lights/commands/{result['batch']}")["deliveries"][0]["state"] == "done"
    page.select_option("#lt-lamp", "")
    result = run_command(page, "off")
    assert result["total"] == len(lamps) and result["done"] >= len(lamps) - 1
    wait_for(lambda: lamp_colour(page, healthy) == "off", 15, "a switched-off lamp drawn off")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-lights-drawer.png"))


def test_viewer_sees_no_operator_controls_and_screenshot(page: Any, hub: RunningHub) -> None:
    villages = hub.get("/api/v1/villages")
    ids = [v["id"] for v in (villages["items"] if isinstance(villages, dict) else villages)]
    for i, (title, state, days) in enumerate([("村口垃圾未清运", None, -1), ("河道漂浮物", "assigned", 2),
                                              ("路灯杆倾斜", None, 5)]):
        p = hub.send("POST", "/api/v1/problems", {"village": ids[(i * 3) % len(ids)], "category": "environment",
                                                  "title": title, "owner": "村委会", "deadline": time.time() + days * 86400})
        if state:
            hub.send("POST", f"/api/v1/problems/{p['id']}/transitions", {"to": state})
    page.goto(hub.url + f"/?token={hub.viewer_token}")
    page.wait_for_selector("#health-link.up", timeout=15000)
    page.wait_for_function("() => window.__vh.state.lights.size > 0 && window.__vh.state.problems.size > 0", timeout=15000)
    assert page.is_visible("#btn-ledger") and page.is_visible("#btn-lights")
    page.click("#btn-lights")
    assert not page.is_visible("#lights [data-lt-cmd]")
    page.click("[data-close-lights]")
    assert page.locator("#alarm-feed [data-to-problem]").count() == 0
    page.click('.p-charts .ptab[data-ptab="ranking"]')
    page.wait_for_selector("#ranking .rk-board.red li")
    page.locator("#ranking .rk-board.red li").first.click()
    page.wait_for_selector("#rk-breakdown .rk-bd-table")
    page.wait_for_timeout(500)  # let ECharts paint the map before the picture (not an assertion)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wall-township-work.png"))
    if os.environ.get("VH_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(ARTIFACTS / "wall-township-work.png", REPO / "docs" / "screenshots" / "wall-township-work.png")


HOSTILE_VILLAGE = "zz-xss"
HOSTILE_NAME = "<img src=x onerror=window.__xss=11>"
HOSTILE_LAMP = "lamp-zz-xss-01"
HOSTILE_LAMP_NAME = '"><svg onload=window.__xss=12>'
HOSTILE_TITLE = "<script>window.__xss=13</script>"
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.sourceFile}`));
"""


def test_hostile_names_in_ledger_ranking_and_lamps_stay_text(page: Any, hub: RunningHub) -> None:
    villages = hub.get("/api/v1/villages")
    villages = villages["items"] if isinstance(villages, dict) else villages
    lat = min(v["lat"] for v in villages if v.get("lat") is not None) - 0.01
    lon = min(v["lon"] for v in villages if v.get("lon") is not None) - 0.01
    hub.send("PUT", f"/api/v1/villages/{HOSTILE_VILLAGE}", {"name": HOSTILE_NAME, "lat": lat, "lon": lon})
    hub.send("PUT", f"/api/v1/devices/{HOSTILE_LAMP}", {"kind": "light", "name": HOSTILE_LAMP_NAME,
                                                        "village": HOSTILE_VILLAGE, "lat": lat + 0.002, "lon": lon + 0.002})
    problem = hub.send("POST", "/api/v1/problems", {"village": HOSTILE_VILLAGE, "category": "safety",
                                                    "title": HOSTILE_TITLE, "owner": HOSTILE_NAME})
    # a period nobody asked for yet: the ranking is computed afresh, with the new village in it
    periods = [p["period"] for p in hub.get("/api/v1/rankings/periods")["items"] if p["kind"] == "month"]
    month = periods[1] if len(periods) > 1 else periods[0]
    assert any(i["village"] == HOSTILE_VILLAGE for i in hub.get(f"/api/v1/rankings?period={month}")["items"])

    violations: list[str] = []
    page.add_init_script(WATCH_CSP)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, hub, hub.operator_token)
    page.wait_for_function(f"() => window.__vh.state.lights.has({json.dumps(HOSTILE_LAMP)})", timeout=10000)

    # the ledger: the problem in the tab, the table and the detail
    page.click('.p-alarms .ptab[data-ptab="problems"]')
    row = page.locator(f'#pb-feed li[data-problem="{problem["id"]}"]')
    row.wait_for(timeout=5000)
    assert HOSTILE_TITLE in row.inner_text() and HOSTILE_NAME in row.inner_text()
    row.click()
    page.wait_for_function("() => document.querySelector('#pb-d-history li')", timeout=5000)
    assert HOSTILE_TITLE in page.inner_text("#pb-d-title") and HOSTILE_NAME in page.inner_text("#pb-d-info")
    page.click("#pb-back")
    assert HOSTILE_TITLE in page.inner_text(f'#pb-rows tr[data-problem="{problem["id"]}"]')
    page.click("[data-close-ledger]")

    # the ranking panel and its breakdown, for that month
    page.click('.p-charts .ptab[data-ptab="ranking"]')
    page.wait_for_selector("#ranking .rk-board li")
    page.select_option("#rk-period", month)
    hostile_row = page.locator(f'#ranking li[data-village="{HOSTILE_VILLAGE}"]')
    hostile_row.wait_for(timeout=10000)
    assert HOSTILE_NAME in hostile_row.inner_text()
    hostile_row.click()
    page.wait_for_selector("#rk-breakdown .rk-bd-table")
    assert HOSTILE_NAME in page.inner_text("#rk-breakdown")

    # the lamp: its map tooltip and the lights drawer
    xy = page.evaluate("""([lon, lat]) => {
        const c = echarts.getInstanceByDom(document.getElementById('map'));
        const idx = c.getOption().series.findIndex((s) => s.name === 'lamps');
        const [x, y] = c.convertToPixel({ seriesIndex: idx }, [lon, lat]);
        const r = document.getElementById('map').getBoundingClientRect();
        return [r.left + x, r.top + y];
    }""", [lon + 0.002, lat + 0.002])
    page.mouse.move(xy[0], xy[1])
    page.wait_for_function("t => [...document.querySelectorAll('#map div')].some((d) => d.textContent.includes(t))",
                           arg=HOSTILE_LAMP_NAME, timeout=5000)
    page.mouse.click(xy[0], xy[1])  # a click on a lamp opens the drawer on it
    page.wait_for_selector(f'#lights:not(.hidden) #lt-list li[data-lamp="{HOSTILE_LAMP}"]')
    assert page.input_value("#lt-lamp") == HOSTILE_LAMP
    assert HOSTILE_LAMP_NAME in page.inner_text(f'#lt-list li[data-lamp="{HOSTILE_LAMP}"]')

    # the printed ranking
    page.goto(hub.url + f"/wall/ranking.html?period={month}")
    page.wait_for_selector("body[data-ready='1']", timeout=10000)
    assert HOSTILE_NAME in page.inner_text("#rank-body")

    assert page.evaluate("() => window.__xss") is None, "a hostile name ran script"
    assert page.evaluate("() => window.__csp") == [] and not violations, violations
