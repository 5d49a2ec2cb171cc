"""The wall screen's pure functions, run in Chromium as the page runs them (no hub, no servers:
only the wall screen router on a loopback port)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from hub.api.routes.wallscreen import WallScreenFiles, router
from tests.browser.conftest import REPO, skip_without_browser
from tests.servers import free_port, wait_port

pytestmark = [pytest.mark.browser, pytest.mark.unit]


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    skip_without_browser()
    app = FastAPI()
    app.state.wall_screen = WallScreenFiles.find(REPO / "dashboards")
    app.include_router(router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def js(static_url: str, chromium: Any) -> Iterator[Any]:
    """evaluate(expr) with the modules imported as `m.<file>` (e.g. m.rrule.buildBroadcast)."""
    page = chromium.new_page()
    page.goto(static_url + "/wall/wall.css")
    page.evaluate("""async () => {
        window.m = {};
        for (const name of ['rrule', 'state', 'i18n', 'panels/cameras', 'panels/map', 'panels/alarms',
                            'panels/speakers', 'panels/charts', 'panels/camera-modal', 'fmt', 'stream',
                            'api']) {
            window.m[name.replace('panels/', '')] = await import(`/wall/js/${name}.js`);
        }
    }""")

    def evaluate(expr: str, arg: Any = None) -> Any:
        return page.evaluate(f"(arg) => {{ const m = window.m; return ({expr}); }}", arg)

    yield evaluate
    page.close()


def cams(spec: dict[str, int]) -> list[dict[str, Any]]:
    return [{"id": f"cam-{v or 'x'}-{i:02d}", "village": v, "kind": "camera"} for v, n in spec.items() for i in range(n)]


def test_camera_pages_pack_small_villages_and_split_large_ones(js: Any) -> None:
    pages = js("m.cameras.buildPages(arg, '', 16).map(p => [p.villages, p.cameras.length])",
               cams({"": 2, "a": 12, "b": 20, "c": 3}))
    assert pages == [[["", "a"], 14], [["b"], 16], [["b", "c"], 7]]


def test_camera_village_filter_keeps_only_that_village(js: Any) -> None:
    pages = js("m.cameras.buildPages(arg, 'b', 16).map(p => p.cameras.map(c => c.village))", cams({"a": 3, "b": 2}))
    assert pages == [["b", "b"]]


def test_tile_is_grey_offline_before_anything_else(js: Any) -> None:
    now = 1_800_000_000
    cases = {
        "offline": ({"status": "offline", "health": "dark"}, now),
        "stale": ({"status": "online", "health": "ok"}, now - 601),
        "unhealthy": ({"status": "online", "health": "covered"}, now - 5),
        "": ({"status": "online", "health": "ok"}, now - 5),
    }
    for want, (dev, snap) in cases.items():
        assert js("m.cameras.tileState(arg[0], arg[1], arg[2]).cls", [dev, snap, now]) == want


def test_sixteen_tiles_fill_the_camera_panel_four_across(js: Any) -> None:
    assert js("m.cameras.bestLayout(16, 845, 760)")["cols"] == 4
    assert js("m.cameras.bestLayout(4, 845, 760)")["cols"] == 2


def test_village_colour_follows_alarms_and_outages(js: Any) -> None:
    def health(cam: tuple[int, int, int], spk: tuple[int, int, int], alarms: int, critical: int = 0) -> str:
        c = {"online": cam[0], "offline": cam[1], "unknown": cam[2], "total": sum(cam)}
        s = {"online": spk[0], "offline": spk[1], "unknown": spk[2], "total": sum(spk)}
        return str(js("m.map.villageHealth(arg[0], arg[1], arg[2], arg[3])", [c, s, alarms, critical]))

    assert health((10, 0, 0), (5, 0, 0), 0) == "ok"
    assert health((9, 1, 0), (5, 0, 0), 0) == "warn"
    assert health((10, 0, 0), (5, 0, 0), 1) == "warn"
    assert health((5, 5, 0), (0, 0, 0), 0) == "bad"
    assert health((10, 0, 0), (5, 0, 0), 1, critical=1) == "bad"
    assert health((0, 0, 3), (0, 0, 0), 0) == "unknown"
    assert health((0, 0, 0), (0, 0, 0), 0) == "unknown"


def test_alarms_sort_open_unacked_critical_newest_first(js: Any) -> None:
    items = [
        {"id": 1, "state": "open", "severity": "warning", "raised_at": 5},
        {"id": 2, "state": "open", "severity": "critical", "raised_at": 1},
        {"id": 3, "state": "open", "severity": "critical", "raised_at": 2, "acked_at": 3},
        {"id": 4, "state": "cleared", "severity": "critical", "raised_at": 9},
        {"id": 5, "state": "open", "severity": "critical", "raised_at": 4},
    ]
    assert js("m.alarms.sortAlarms(arg).map(a => a.id)", items) == [5, 2, 1, 3, 4]


FORM = {"title": " 冬季防火 ", "text": "小心火烛", "all": False, "villages": ["v01"], "groups": ["g1"],
        "priority": "3", "volume": "70", "repeat": "2", "startLocal": "", "preset": "once",
        "offsetMinutes": 480, "nowLocal": "2026-12-01T07:30"}


def test_broadcast_now_has_no_schedule_and_matches_protocol_7(js: Any) -> None:
    body = js("m.rrule.buildBroadcast(arg)", FORM)
    assert body == {"title": "冬季防火", "media": {"type": "tts", "text": "小心火烛", "lang": "zh"},
                    "targets": {"all": False, "villages": ["v01"], "groups": ["g1"], "devices": []},
                    "priority": 3, "volume": 70, "repeat": 2}


def test_recurrence_presets_become_rrules_starting_in_township_time(js: Any) -> None:
    body = js("m.rrule.buildBroadcast(arg)", {**FORM, "preset": "weekdays", "startLocal": "2026-12-01T07:30"})
    assert body["schedule"] == {"start": "2026-12-01T07:30:00+08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"}
    daily = js("m.rrule.buildBroadcast(arg)", {**FORM, "preset": "daily7"})
    assert daily["schedule"] == {"start": "2026-12-01T07:30:00+08:00", "rrule": "FREQ=DAILY;COUNT=7"}
    assert js("m.rrule.localToIso('2026-06-01T12:00', -150)") == "2026-06-01T12:00:00-02:30"


def test_whole_township_target_clears_the_lists_and_empty_targets_are_refused(js: Any) -> None:
    body = js("m.rrule.buildBroadcast(arg)", {**FORM, "all": True})
    assert body["targets"] == {"all": True, "villages": [], "groups": [], "devices": []}
    assert js("m.rrule.hasTargets(m.rrule.buildBroadcast(arg))", {**FORM, "villages": [], "groups": []}) is False


def test_both_languages_have_every_text(js: Any) -> None:
    missing = js("[Object.keys(m.i18n.DICT.zh).filter(k => !(k in m.i18n.DICT.en)),"
                 " Object.keys(m.i18n.DICT.en).filter(k => !(k in m.i18n.DICT.zh))]")
    assert missing == [[], []]


def test_ages_read_naturally_in_both_languages(js: Any) -> None:
    assert js("(m.i18n.setLang('zh'), [m.i18n.ago(5), m.i18n.ago(125), m.i18n.ago(7300)])") == ["5秒前", "2分钟前", "2小时前"]
    assert js("(m.i18n.setLang('en'), [m.i18n.ago(5), m.i18n.ago(125), m.i18n.ago(90000)])") == ["5s ago", "2m ago", "1d ago"]


def test_finished_broadcast_leaves_now_playing_after_a_while(js: Any) -> None:
    now = time.time()
    got = js("""(() => {
        const s = m.state.state;
        s.overview = {broadcasts: {playing: []}};
        s.progress.clear();
        s.progress.set('b1', {id: 'b1', title: 'x', done: 3, total: 3, by_state: {done: 3}, updated: arg - 10});
        s.progress.set('b2', {id: 'b2', title: 'y', done: 3, total: 3, by_state: {done: 3}, updated: arg - 600});
        s.progress.set('b3', {id: 'b3', title: 'z', done: 1, total: 3, by_state: {done: 1, playing: 2}, updated: arg - 600});
        return m.speakers.playingNow(arg).map(b => b.id);
    })()""", now)
    assert got == ["b1", "b3"]


def test_history_axis_spans_24_h_or_what_the_hub_has_seen(js: Any) -> None:
    now_ms = 1_800_000_000_000
    hour = 3600 * 1000
    full = js("m.charts.axisRange([{ts: (arg - 30 * 3600000) / 1000}], arg)", now_ms)
    assert full == {"min": now_ms - 24 * hour, "max": now_ms}
    young = js("m.charts.axisRange([{ts: (arg - 2 * 3600000) / 1000}], arg)", now_ms)
    assert young == {"min": now_ms - 2 * hour, "max": now_ms}
    fresh = js("m.charts.axisRange([], arg)", now_ms)
    assert fresh == {"min": now_ms - hour // 2, "max": now_ms}


@pytest.fixture(scope="module")
def static_url_with_boundary() -> Iterator[str]:
    skip_without_browser()
    app = FastAPI()
    app.state.wall_screen = WallScreenFiles.find(REPO / "dashboards", REPO / "dashboards" / "boundary.example.geojson")
    app.include_router(router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_map_draws_the_township_boundary_when_one_is_configured(static_url_with_boundary: str, chromium: Any) -> None:
    page = chromium.new_page()
    try:
        page.goto(static_url_with_boundary + "/")
        page.wait_for_selector("#login-modal:not(.hidden)")  # no token yet: the page asks for one
        # the chart exists before its first setOption: getOption() is undefined until then
        page.wait_for_function("() => (echarts.getInstanceByDom(document.getElementById('map'))?.getOption()?.geo || []).length > 0",
                               timeout=5000)
        assert page.evaluate("() => echarts.getInstanceByDom(document.getElementById('map')).getOption().geo[0].map") == "township"
    finally:
        page.close()


def test_without_a_boundary_the_map_places_villages_on_plain_axes(static_url: str, chromium: Any) -> None:
    page = chromium.new_page()
    try:
        page.goto(static_url + "/")
        # the chart exists before its first setOption: getOption() is undefined until then
        page.wait_for_function("() => (echarts.getInstanceByDom(document.getElementById('map'))?.getOption()?.series || []).length > 0",
                               timeout=5000)
        option = page.evaluate("() => { const o = echarts.getInstanceByDom(document.getElementById('map')).getOption();"
                               " return {geo: (o.geo || []).length, system: o.series[1].coordinateSystem}; }")
        assert option == {"geo": 0, "system": "cartesian2d"}
    finally:
        page.close()


def test_escape_html_makes_any_value_literal_text(js: Any) -> None:
    hostile = """<img src=x onerror="a('1')">&`"""
    assert js("m.fmt.escapeHtml(arg)", hostile) == "&lt;img src=x onerror=&quot;a(&#39;1&#39;)&quot;&gt;&amp;&#96;"
    assert js("[m.fmt.escapeHtml(null), m.fmt.escapeHtml(undefined), m.fmt.escapeHtml(0)]") == ["", "", "0"]
    # what the page does with it: the text comes back unchanged, no element is made
    assert js("(() => { const d = document.createElement('div'); d.innerHTML = m.fmt.escapeHtml(arg);"
              " return [d.textContent, d.children.length]; })()", hostile) == [hostile, 0]


def test_map_tooltip_escapes_the_village_name(js: Any) -> None:
    name = "<img src=x onerror=window.__xss=1>"
    html = js("m.map.tooltipHtml({ data: { name: arg, cam: { online: 1, total: 2 }, spk: { online: '<b>', total: 3 },"
              " alarms: 0 } })", name)
    assert "<img" not in html and "&lt;img src=x onerror=window.__xss=1&gt;" in html
    assert "&lt;b&gt;/3" in html
    assert js("m.map.tooltipHtml({ data: {} })") == ""


STREAM_CLOSED_WITH = """(async (code) => {
    const made = [];
    window.WebSocket = class { constructor(url) { this.url = url; made.push(this); } close() {} };
    localStorage.setItem('vh.token', 'tok-1');
    const states = [];
    const s = new m.stream.LiveStream({ token: 'tok-1', onEvent: () => {}, onState: (st) => states.push(st) });
    s.start();
    made[0].onclose({ code });
    const result = { states, sockets: made.length, token: m.api.getToken(), timer: s.closed ? null : 'retrying' };
    s.stop();
    return result;
})(arg)"""


def test_stream_closed_with_4401_drops_the_token_and_stops(js: Any) -> None:
    got = js(STREAM_CLOSED_WITH, 4401)
    assert got == {"states": ["connecting", "unauthorized"], "sockets": 1, "token": "", "timer": None}


def test_stream_closed_otherwise_keeps_the_token_and_retries(js: Any) -> None:
    got = js(STREAM_CLOSED_WITH, 1006)
    assert got == {"states": ["connecting", "lost"], "sockets": 1, "token": "tok-1", "timer": "retrying"}
