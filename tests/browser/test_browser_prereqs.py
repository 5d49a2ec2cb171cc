"""Without Chromium, Playwright or the chart library the browser tests skip on a developer's
machine and fail under CI=true, naming the command that fixes the machine (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import conftest

pytestmark = pytest.mark.unit


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", str(tmp_path / "no-chromium"))


@pytest.fixture
def no_node_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "REPO", tmp_path)
    monkeypatch.setattr(conftest, "CHROMIUM", __file__)  # any existing file: only node_modules lacks


@pytest.mark.parametrize(("missing", "fix"), [("no_chromium", "apt-get install -y chromium"),
                                              ("no_node_modules", "npm ci")])
def test_a_missing_part_fails_under_ci_naming_the_fix(missing: str, fix: str, request: pytest.FixtureRequest,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    request.getfixturevalue(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=fix):
        conftest.skip_without_browser()


@pytest.mark.parametrize("missing", ["no_chromium", "no_node_modules"])
def test_a_missing_part_skips_outside_ci(missing: str, request: pytest.FixtureRequest,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    request.getfixturevalue(missing)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        conftest.skip_without_browser()


def test_a_complete_machine_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lib = tmp_path / "dashboards" / "node_modules" / "echarts" / "dist"
    lib.mkdir(parents=True)
    (lib / "echarts.min.js").write_text("")
    monkeypatch.setattr(conftest, "REPO", tmp_path)
    monkeypatch.setattr(conftest, "CHROMIUM", __file__)
    monkeypatch.setenv("CI", "true")
    pytest.importorskip("playwright.sync_api")
    assert conftest.missing_browser_part() is None
    conftest.skip_without_browser()
