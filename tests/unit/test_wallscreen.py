"""The wall screen router: the page, its modules, the vendored chart library, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api.routes.wallscreen import (
    VENDOR_FILES,
    WallScreenFiles,
    content_security_policy,
    router,
    safe_child,
)

pytestmark = pytest.mark.unit

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"


def client_for(dashboards: Path, boundary: Path | None = None) -> TestClient:
    app = FastAPI()
    app.state.wall_screen = WallScreenFiles.find(dashboards, boundary)
    app.include_router(router)
    return TestClient(app)


@pytest.fixture
def fake_dashboards(tmp_path: Path) -> Path:
    (tmp_path / "wall" / "js").mkdir(parents=True)
    (tmp_path / "wall" / "index.html").write_text("<!doctype html><title>wall</title>")
    (tmp_path / "wall" / "js" / "main.js").write_text("export {};")
    (tmp_path / "secret.txt").write_text("not for the web")
    return tmp_path


def test_root_serves_the_wall_screen_page(fake_dashboards: Path) -> None:
    r = client_for(fake_dashboards).get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "wall" in r.text
    assert r.headers["cache-control"] == "no-cache"


def test_wall_modules_are_served_as_javascript(fake_dashboards: Path) -> None:
    r = client_for(fake_dashboards).get("/wall/js/main.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/wall/../secret.txt", "/wall/%2e%2e/secret.txt", "/wall/..%2fsecret.txt",
                                  "/wall/js/../../secret.txt", "/wall/nope.js", "/wall/js"])
def test_paths_outside_the_wall_directory_or_missing_are_404(fake_dashboards: Path, path: str) -> None:
    r = client_for(fake_dashboards).get(path)
    assert r.status_code == 404
    assert "not for the web" not in r.text


def test_missing_chart_library_answers_503_telling_the_admin_to_run_npm_ci(fake_dashboards: Path) -> None:
    r = client_for(fake_dashboards).get("/vendor/echarts.min.js")
    assert r.status_code == 503
    assert "npm ci" in r.text
    assert str(fake_dashboards) in r.text


def test_installed_chart_library_is_served_from_node_modules(fake_dashboards: Path) -> None:
    lib = fake_dashboards / "node_modules" / "echarts" / "dist"
    lib.mkdir(parents=True)
    (lib / "echarts.min.js").write_text("var echarts={};")
    r = client_for(fake_dashboards).get("/vendor/echarts.min.js")
    assert r.status_code == 200
    assert r.text == "var echarts={};"
    assert "max-age" in r.headers["cache-control"]


def test_only_whitelisted_vendor_files_are_served(fake_dashboards: Path) -> None:
    (fake_dashboards / "node_modules").mkdir()
    (fake_dashboards / "node_modules" / "package.json").write_text("{}")
    assert client_for(fake_dashboards).get("/vendor/package.json").status_code == 404
    assert client_for(fake_dashboards).get("/vendor/..%2fpackage.json").status_code == 404


def test_boundary_is_404_until_configured_then_served_as_geojson(fake_dashboards: Path, tmp_path: Path) -> None:
    assert client_for(fake_dashboards).get("/wall/boundary.geojson").status_code == 404
    boundary = tmp_path / "b.geojson"
    boundary.write_text('{"type": "FeatureCollection", "features": []}')
    r = client_for(fake_dashboards, boundary).get("/wall/boundary.geojson")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")


def test_safe_child_refuses_escapes_and_nul(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("x")
    assert safe_child(tmp_path, "a.js") == (tmp_path / "a.js").resolve()
    for bad in ("", "../a.js", "/etc/passwd", "a.js\0", "."):
        assert safe_child(tmp_path, bad) is None


def test_real_page_references_only_local_assets() -> None:
    """Works offline: no CDN, no external fonts, every script and stylesheet served by the hub."""
    html = (DASHBOARDS / "wall" / "index.html").read_text()
    css = (DASHBOARDS / "wall" / "wall.css").read_text()
    for text in (html, css):
        assert not re.search(r"https?://", text)
        assert "@import" not in text and "@font-face" not in text
    for ref in re.findall(r'(?:src|href)="(/[^"]*)"', html):
        assert ref.startswith(("/wall/", "/vendor/")), ref
        if ref.startswith("/vendor/"):
            assert ref.removeprefix("/vendor/") in VENDOR_FILES


def test_real_modules_import_only_relative_local_files() -> None:
    for js in (DASHBOARDS / "wall" / "js").rglob("*.js"):
        text = js.read_text()
        assert not re.search(r"https?://(?!\$\{)", text.replace("http…", "")), js.name
        for spec in re.findall(r'^import .* from "([^"]+)";', text, re.MULTILINE):
            assert spec.startswith("./") or spec.startswith("../"), f"{js.name}: {spec}"
            assert (js.parent / spec).resolve().is_file(), f"{js.name}: {spec} missing"


def test_package_json_pins_echarts_and_lockfile_is_committed() -> None:
    import json

    pkg = json.loads((DASHBOARDS / "package.json").read_text())
    assert "echarts" in pkg["dependencies"]
    lock = json.loads((DASHBOARDS / "package-lock.json").read_text())
    assert "node_modules/echarts" in lock["packages"]
    assert VENDOR_FILES["echarts.min.js"].startswith("echarts/")


def test_installed_package_falls_back_to_dashboards_in_the_working_directory(
    fake_dashboards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    workdir = tmp_path / "app"
    shutil.copytree(fake_dashboards / "wall", workdir / "dashboards" / "wall")
    monkeypatch.chdir(workdir)
    r = client_for(tmp_path / "site-packages" / "dashboards").get("/")
    assert r.status_code == 200 and "wall" in r.text


def csp_directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        assert name not in out, f"{name} twice"
        out[name] = values
    return out


@pytest.mark.parametrize("path", ["/", "/wall/", "/wall/js/main.js", "/vendor/echarts.min.js",
                                  "/vendor/echarts.esm.min.mjs"])
def test_every_wall_screen_response_carries_the_security_headers(fake_dashboards: Path, path: str) -> None:
    lib = fake_dashboards / "node_modules" / "echarts" / "dist"
    lib.mkdir(parents=True)
    (lib / "echarts.min.js").write_text("var echarts={};")  # the .mjs stays missing: the 503 page
    r = client_for(fake_dashboards).get(path, headers={"Host": "hub.example:8000"})
    assert r.status_code in (200, 503)
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = csp_directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["connect-src"] == ["'self'", "ws://hub.example:8000", "wss://hub.example:8000"]
    assert csp["img-src"] == ["'self'", "data:", "blob:"]
    assert csp["style-src-attr"] == ["'unsafe-inline'"]  # ECharts' tooltips are HTML with style attributes
    assert csp["style-src-elem"] == (["'self'", "'unsafe-inline'"] if r.status_code == 503 else ["'self'"])


@pytest.mark.parametrize("host", ["evil.example; script-src *", "a b", "x\\y", "", None])
def test_an_odd_host_header_is_never_written_into_the_policy(host: str | None) -> None:
    csp = csp_directives(content_security_policy(host))
    assert csp["connect-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]


def test_ipv6_host_names_the_websocket_origin() -> None:
    assert csp_directives(content_security_policy("[::1]:8000"))["connect-src"] == [
        "'self'", "ws://[::1]:8000", "wss://[::1]:8000"]


def test_real_page_has_no_inline_script_or_handler() -> None:
    """script-src 'self' blocks inline code: every script is a file, no on* attributes."""
    html = (DASHBOARDS / "wall" / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert re.search(r'\bsrc="/', tag), tag
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html)
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    assert "javascript:" not in html
