"""The pure functions of the ledger, ranking and street-light panels, run in Chromium as the page
runs them (only the wall-screen router on a loopback port; no hub)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_wall_logic import static_url  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.unit]


@pytest.fixture(scope="module")
def js(static_url: str, chromium: Any) -> Iterator[Any]:  # noqa: F811
    page = chromium.new_page()
    page.goto(static_url + "/wall/wall.css")
    page.evaluate("""async () => {
        window.m = {};
        for (const name of ['problems', 'ranking', 'lights']) window.m[name] = await import(`/wall/js/panels/${name}.js`);
    }""")

    def evaluate(expr: str, arg: Any = None) -> Any:
        return page.evaluate(f"(arg) => {{ const m = window.m; return ({expr}); }}", arg)

    yield evaluate
    page.close()


def test_transitions_follow_the_hubs_state_machine(js: Any) -> None:
    from hub.problems.machine import TRANSITIONS

    for state, allowed in TRANSITIONS.items():
        offered = js("m.problems.transitionsFor(arg).map(([to]) => to)", state)
        assert sorted(offered) == sorted(allowed), state


def test_overdue_only_while_nobody_fixed_it(js: Any) -> None:
    now = 1_764_680_000
    cases = [("open", now - 1, True), ("assigned", now - 1, True), ("fixed", now - 1, False),
             ("closed", now - 1, False), ("open", now + 60, False), ("assigned", None, False)]
    for state, deadline, expected in cases:
        assert js("m.problems.isOverdue(arg.p, arg.now)", {"p": {"state": state, "deadline": deadline}, "now": now}) is expected
    order = js("m.problems.sortProblems(arg.items, arg.now).map((p) => p.id)", {"now": now, "items": [
        {"id": "later", "state": "open", "deadline": now + 7200, "created_at": 1},
        {"id": "late", "state": "assigned", "deadline": now - 10, "created_at": 2},
        {"id": "none", "state": "open", "deadline": None, "created_at": 3},
        {"id": "soon", "state": "open", "deadline": now + 60, "created_at": 4}]})
    assert order == ["late", "soon", "later", "none"]


def test_local_deadline_input_round_trips_in_the_township_zone(js: Any) -> None:
    # Asia/Shanghai (the default zone): 2026-12-02 12:00 UTC is 20:00 there
    ts = 1_796_212_800  # 2026-12-02T12:00:00Z
    assert js("m.problems.toLocalInput(arg)", ts) == "2026-12-02T20:00"
    assert js("m.problems.fromLocalInput('2026-12-02T20:00')") == ts


def test_red_and_black_lists_never_overlap(js: Any) -> None:
    def boards(n: int) -> tuple[list[int], list[int]]:
        items = [{"rank": i + 1, "village": f"v{i:02d}"} for i in range(n)]
        got = js("(() => { const b = m.ranking.splitBoards(arg); return [b.red.map((i) => i.rank), b.black.map((i) => i.rank)]; })()", items)
        return got[0], got[1]

    assert boards(12) == ([1, 2, 3, 4, 5], [12, 11, 10, 9, 8])
    assert boards(6) == ([1, 2, 3], [6, 5, 4])
    assert boards(3) == ([1, 2], [3])
    assert boards(1) == ([1], [])
    assert js("m.ranking.fmtScore(87)") == "87.0" and js("m.ranking.fmtScore(null)") == "—"


def test_breakdown_html_escapes_what_the_hub_sent(js: Any) -> None:
    html = js("m.ranking.breakdownHtml(arg)", {"name": "<img src=x>", "score": 90, "previous_rank": 2, "breakdown": {
        "availability": {"score": 80, "weight": 0.4, "detail": "<b>x</b>"}}})
    assert "<img" not in html and "&lt;img src=x&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_lamp_state_counts_and_command_progress(js: Any) -> None:
    lamps = [{"status": "online", "on": True, "level": 80}, {"status": "online", "on": True, "level": 0},
             {"status": "online", "on": False, "fault": "led_open"}, {"status": "offline", "on": True},
             {"status": "online", "on": False}]
    assert js("arg.map((l) => m.lights.lampState(l))", lamps) == ["on", "off", "fault", "offline", "off"]
    assert js("m.lights.lampCounts(arg)", lamps) == {"total": 5, "online": 4, "on": 1, "fault": 1, "offline": 1}
    progress = js("m.lights.batchProgress({deliveries: new Map(arg)})",
                  [["a", {"state": "done"}], ["b", {"state": "failed"}], ["c", {"state": "received"}], ["d", {"state": "done"}]])
    assert progress == {"done": 2, "total": 4, "by": {"done": 2, "failed": 1, "received": 1}, "finished": 3}
    tip = js("m.lights.lampTooltipHtml(arg)", {"id": "l<1>", "name": "<svg onload=x>", "village": None, "st": "fault", "fault": "<b>"})
    assert "<svg" not in tip and "&lt;svg onload=x&gt;" in tip and "&lt;b&gt;" in tip
