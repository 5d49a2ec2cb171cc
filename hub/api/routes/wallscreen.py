"""The wall screen 一屏知全域: static page, its ES modules and the npm-installed chart library.

Served without authentication (it is only static files; every data call the page makes
goes to `/api/v1` with the operator's token). Where the files are (`WallScreenFiles`: the
dashboards directory, the township boundary) is set once per app in `app.state.wall_screen`.
Nothing comes from a CDN: the chart library is read from `dashboards/node_modules`, installed
by `npm ci` at setup time. When it is missing the vendor routes answer 503 and the page says
what to run.

Every response carries `security_headers()`: a Content-Security-Policy that lets the page run
only its own files (no inline script, no eval, no plugins, no framing, data only from this hub
and its WebSocket), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and
`X-Content-Type-Options: nosniff`. Style attributes are allowed: ECharts writes its tooltips as
HTML with style attributes (and the page sets a few itself); a style cannot run script.

Routes:
- `GET /` and `GET /wall/` — the wall screen (`dashboards/wall/index.html`)
- `GET /wall/{path}` — the page's own CSS, JS modules and i18n files
- `GET /wall/boundary.geojson` — the township boundary when one is configured (else 404)
- `GET /vendor/{name}` — whitelisted files from `dashboards/node_modules`
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

log = logging.getLogger(__name__)

# Public name under /vendor/ → path inside dashboards/node_modules. Only these are served.
VENDOR_FILES: Final[dict[str, str]] = {
    "echarts.min.js": "echarts/dist/echarts.min.js",
    "echarts.esm.min.mjs": "echarts/dist/echarts.esm.min.mjs",
}

MEDIA_TYPES: Final[dict[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}

# The page's own files change with the hub version: revalidate every time. The vendored
# library is pinned by package-lock.json: cache it for a day.
NO_CACHE: Final[dict[str, str]] = {"Cache-Control": "no-cache"}
VENDOR_CACHE: Final[dict[str, str]] = {"Cache-Control": "public, max-age=86400"}

# A Host header fit to be named in the policy (host, IPv4, [IPv6], optional port); anything else
# gets 'self' alone, which CSP Level 3 browsers also match against ws:/wss: on the same host.
_SAFE_HOST: Final = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def content_security_policy(host: str | None, *, style_elements: bool = False) -> str:
    """The wall screen's policy; `host` (the request's Host header) names the WebSocket origin.

    Style attributes are allowed (ECharts' tooltips are HTML with style attributes), `<style>`
    elements are not, unless `style_elements` (the self-contained 503 page). Browsers without
    `style-src-elem`/`style-src-attr` (CSP Level 3) fall back to `style-src`, which allows both.
    """
    connect = "'self'"
    if host and _SAFE_HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return "; ".join((
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "style-src-elem 'self'" + (" 'unsafe-inline'" if style_elements else ""),
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        f"connect-src {connect}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))


def security_headers(request: Request, *, style_elements: bool = False) -> dict[str, str]:
    """Headers on every wall-screen response (pages, modules, the chart library, the 503 page)."""
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("host"),
                                                           style_elements=style_elements),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


MISSING_VENDOR_PAGE: Final[str] = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>VillageHub — 依赖未安装 / dependencies missing</title>
<style>body{{background:#06101f;color:#e6f1ff;font:24px/1.6 sans-serif;padding:60px}}
code{{background:#13233d;padding:2px 8px;border-radius:4px}}</style></head>
<body><h1>大屏依赖未安装 · Wall screen dependencies are not installed</h1>
<p>图表库 <code>{name}</code> 不在 <code>{node_modules}</code>。</p>
<p>The chart library <code>{name}</code> is missing from <code>{node_modules}</code>.</p>
<p>管理员请运行 / Admin, please run:<br><code>cd {dashboards} &amp;&amp; npm ci</code><br>
然后刷新本页 / then reload this page.</p></body></html>
"""


def safe_child(root: Path, relative: str) -> Path | None:
    """`root / relative` when it stays inside `root` and is a file; else None (pure path check)."""
    if not relative or "\0" in relative:
        return None
    try:
        root_resolved = root.resolve()
        candidate = (root_resolved / relative).resolve()
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(root_resolved) or not candidate.is_file():
        return None
    return candidate


def media_type_for(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def find_dashboards_dir(preferred: Path) -> Path:
    """`preferred` when it holds the wall screen, else `./dashboards` (an installed package run
    from a checkout or the Docker image's /app), else `preferred` (the page then answers 404)."""
    for candidate in (preferred, Path.cwd() / "dashboards"):
        if (candidate / "wall" / "index.html").is_file():
            return candidate
    return preferred


@dataclass
class WallScreenFiles:
    """Where the wall screen's files are: made once per app (`create_app` puts it in
    `app.state.wall_screen`), read by the routes on every request."""

    dashboards_dir: Path
    boundary: Path  # the township boundary to draw on the map (404 while the file is missing)
    warned: set[str] = field(default_factory=set)  # vendor files already logged as missing

    @property
    def wall_dir(self) -> Path:
        return self.dashboards_dir / "wall"

    @property
    def node_modules(self) -> Path:
        return self.dashboards_dir / "node_modules"

    @classmethod
    def find(cls, dashboards_dir: Path, boundary_geojson: Path | None = None) -> WallScreenFiles:
        """The files under `dashboards_dir` (or where `find_dashboards_dir` finds them).

        `boundary_geojson`: the township boundary; when None, `dashboards_dir/boundary.geojson`.
        """
        found = find_dashboards_dir(dashboards_dir)
        if found != dashboards_dir:
            log.info("wall screen: %s has no wall/; serving %s", dashboards_dir, found)
        elif not (found / "wall" / "index.html").is_file():
            log.warning("wall screen: no wall/index.html under %s; / will answer 404", found)
        return cls(found, boundary_geojson or found / "boundary.geojson")


def wall_screen_files(request: Request) -> WallScreenFiles:
    return request.app.state.wall_screen  # type: ignore[no-any-return]


WallFiles = Annotated[WallScreenFiles, Depends(wall_screen_files)]

router = APIRouter(tags=["wall screen"])


def _page(files: WallScreenFiles, request: Request) -> Response:
    index = files.wall_dir / "index.html"
    if not index.is_file():
        raise HTTPException(404, f"wall screen not found at {index}")
    return FileResponse(index, media_type=MEDIA_TYPES[".html"],
                        headers={**NO_CACHE, **security_headers(request)})


@router.get("/", include_in_schema=False)
def wall_screen(request: Request, files: WallFiles) -> Response:
    return _page(files, request)


@router.get("/wall/", include_in_schema=False)
def wall_screen_alias(request: Request, files: WallFiles) -> Response:
    return _page(files, request)


@router.get("/wall/boundary.geojson", include_in_schema=False)
def wall_boundary(request: Request, files: WallFiles) -> Response:
    if not files.boundary.is_file():
        raise HTTPException(404, "no township boundary configured")
    return FileResponse(files.boundary, media_type=MEDIA_TYPES[".geojson"],
                        headers={**NO_CACHE, **security_headers(request)})


@router.get("/wall/{path:path}", include_in_schema=False)
def wall_file(path: str, request: Request, files: WallFiles) -> Response:
    found = safe_child(files.wall_dir, path)
    if found is None:
        raise HTTPException(404, "not found")
    return FileResponse(found, media_type=media_type_for(found),
                        headers={**NO_CACHE, **security_headers(request)})


@router.get("/vendor/{name}", include_in_schema=False)
def vendor_file(name: str, request: Request, files: WallFiles) -> Response:
    relative = VENDOR_FILES.get(name)
    if relative is None:
        raise HTTPException(404, "not a vendored file")
    found = safe_child(files.node_modules, relative)
    if found is None:
        if name not in files.warned:
            files.warned.add(name)
            log.warning(
                "wall screen: %s missing from %s; run `npm ci` in %s",
                name, files.node_modules, files.dashboards_dir,
            )
        body = MISSING_VENDOR_PAGE.format(
            name=name, node_modules=files.node_modules, dashboards=files.dashboards_dir
        )
        return HTMLResponse(body, status_code=503, headers={"Retry-After": "60",
                                                            **security_headers(request, style_elements=True)})
    return FileResponse(found, media_type=media_type_for(found),
                        headers={**VENDOR_CACHE, **security_headers(request)})
