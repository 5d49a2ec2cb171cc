"""API hardening (issue 7 items 4): every /api/v1 route, found by walking the app, has a role rule.

The routes are not listed by hand: they come from `create_app` itself (and its OpenAPI
schema), so a route added tomorrow without a role rule, without a body limit or with
a body model that accepts unknown fields fails here without anyone editing this file.
No servers: the app runs on the embedded SQLite store with the optional services
attached, and is called in-process.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from hub.api.app import create_app
from hub.api.bodylimit import LARGE_BODY_ROUTES, body_limit
from hub.auth import FailureLimiter
from hub.bootstrap import build_services
from hub.clock import ManualClock
from hub.services import Services
from hub.settings import load_settings

pytestmark = pytest.mark.e2e

API = "/api/v1"
ROLES = ("viewer", "operator", "admin")


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    services: Services
    tokens: dict[str, str]

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build_app(data: Path) -> tuple[Services, FastAPI]:
    services = build_services(load_settings(data_dir=data, influx_url=None), ManualClock())
    return services, create_app(services)


def close_services(services: Services) -> None:
    for closing in (services.registry.close, services.alerts.close, services.tokens.close,
                    services.store.close):
        with contextlib.suppress(Exception):  # best-effort teardown
            closing()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    services, app = build_app(Path(tmp_path_factory.mktemp("api-security")))
    # The walk fails authentication once per route: keep the limiter out of its way
    # (its own test is in test_api_core).
    services.auth_failures = FailureLimiter(limit=1_000_000)
    tokens = {role: services.tokens.create(f"test-{role}", role) for role in ROLES}  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app, client, services, tokens)
    close_services(services)


# --------------------------------------------------------------------------- walking the app


@dataclass(frozen=True)
class Endpoint:
    """One HTTP route as the app serves it: full path (router prefixes included) and dependency tree."""

    path: str
    methods: frozenset[str]
    dependant: Any
    body_field: Any


def api_routes(app: FastAPI) -> list[Endpoint]:
    """Every /api/v1 HTTP route, flattened through included routers."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI ≥ 0.16x includes routers lazily
    except ImportError:
        contexts: list[Any] = [r for r in app.routes if isinstance(r, APIRoute)]
    else:
        contexts = [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]
    return [
        Endpoint(c.path, frozenset(c.methods or ()), c.dependant, getattr(c, "body_field", None))
        for c in contexts if c.path and c.path.startswith(API)
    ]


def concrete_path(path: str) -> str:
    """`/api/v1/devices/{id}/snapshot` → a path that routes to it (ids need not exist: auth comes first)."""
    return re.sub(r"\{[^}:]+(:path)?\}", "cam-0001", path)


def calls(route: Endpoint) -> list[tuple[str, Endpoint]]:
    """(method, route) for each HTTP method of each /api/v1 route (HEAD/OPTIONS left to Starlette)."""
    return [(m, route) for m in sorted(route.methods or ()) if m not in ("HEAD", "OPTIONS")]


def required_role(route: Endpoint) -> str | None:
    """The role of the `hub.api.deps.require(role)` dependency anywhere in the route's dependency tree."""
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        role = getattr(dep.call, "required_role", None)
        if role is not None:
            return str(role)
        stack.extend(dep.dependencies)
    return None


def route_id(item: tuple[str, Any]) -> str:
    method, route = item
    return f"{method} {route.path}"


def _all_calls() -> list[tuple[str, Endpoint]]:
    # Built once at collection time from a throwaway app, so each route is its own test case.
    with tempfile.TemporaryDirectory() as d:
        services, app = build_app(Path(d))
        found = [c for r in api_routes(app) for c in calls(r)]
        close_services(services)
    return found


ALL_CALLS = _all_calls()
CALL_IDS = [route_id(c) for c in ALL_CALLS]


def test_the_walk_finds_the_contract_routes() -> None:
    """A canary: if the walk found nothing, every test below would pass vacuously."""
    found = {route_id(c) for c in ALL_CALLS}
    for must in ("GET /api/v1/overview", "GET /api/v1/devices", "GET /api/v1/devices/{device_id}",
                 "GET /api/v1/alerts"):
        assert must in found, f"{must} not found in {sorted(found)}"


def test_every_openapi_path_is_walked(api: Api) -> None:
    schema = api.app.openapi()
    walked = {(m, r.path) for m, r in ALL_CALLS}
    for path, ops in schema["paths"].items():
        if path.startswith(API):
            for method in ops:
                if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                    assert (method.upper(), path) in walked, f"{method.upper()} {path}"


# --------------------------------------------------------------------------- authentication and roles


@pytest.mark.parametrize("call", ALL_CALLS, ids=CALL_IDS)
def test_every_api_v1_route_declares_a_role_rule(call: tuple[str, Endpoint]) -> None:
    _, route = call
    assert required_role(route) in ROLES, (
        f"{route.path} has no hub.api.deps.require(role) dependency (Viewer/Operator/Admin)"
    )


@pytest.mark.parametrize("call", ALL_CALLS, ids=CALL_IDS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer ", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "bearer"],
    ids=["missing", "empty", "invalid", "basic", "scheme-only"],
)
def test_every_api_v1_route_refuses_a_missing_or_invalid_token_with_401(
    api: Api, call: tuple[str, Endpoint], authorization: str | None
) -> None:
    method, route = call
    headers = {"Authorization": authorization} if authorization is not None else {}
    r = api.client.request(method, concrete_path(route.path), headers=headers, json={})
    assert r.status_code == 401, f"{method} {route.path} → {r.status_code} {r.text[:200]}"
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")


# Routes that some role may not call (viewer routes are open to every role; a route without a
# rule fails test_every_api_v1_route_declares_a_role_rule above).
RESTRICTED_CALLS = [c for c in ALL_CALLS if required_role(c[1]) in ROLES[1:]]


def test_the_walk_finds_operator_and_admin_routes() -> None:
    """A canary: if no route were restricted, the 403 walk below would test nothing."""
    needed = {required_role(route) for _, route in RESTRICTED_CALLS}
    assert needed == {"operator", "admin"}, needed


@pytest.mark.parametrize("call", RESTRICTED_CALLS, ids=[route_id(c) for c in RESTRICTED_CALLS])
def test_every_api_v1_route_refuses_a_role_below_its_rule_with_403(api: Api, call: tuple[str, Endpoint]) -> None:
    method, route = call
    needed = required_role(route)
    assert needed in ROLES
    for role in ROLES[: ROLES.index(needed)]:
        r = api.client.request(method, concrete_path(route.path),
                               headers={"Authorization": f"Bearer {api.tokens[role]}"}, json={})
        assert r.status_code == 403, f"{role} on {method} {route.path} → {r.status_code}"


def test_the_wall_screen_stream_refuses_a_missing_or_invalid_token(api: Api) -> None:
    ws_routes = [r for r in api.app.routes if isinstance(r, APIWebSocketRoute) and r.path.startswith(API)]
    for route in ws_routes:
        for query in ("", "?token=not-a-token"):
            with pytest.raises(WebSocketDisconnect) as refused, \
                    api.client.websocket_connect(concrete_path(route.path) + query) as ws:
                ws.receive_text()
            assert refused.value.code in (1008, 4401, 4403), route.path


def test_a_valid_token_is_let_through(api: Api) -> None:
    r = api.client.get(f"{API}/overview", headers={"Authorization": f"Bearer {api.tokens['viewer']}"})
    assert r.status_code == 200


# --------------------------------------------------------------------------- bodies and pagination


def _body_models(route: Endpoint) -> list[type[BaseModel]]:
    """The JSON body's own models; a multipart form (an upload) has a FastAPI-made model, not ours."""
    field = route.body_field
    if field is None:
        return []
    annotation = getattr(field, "type_", None) or getattr(getattr(field, "field_info", None), "annotation", None)
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return []
    return [] if annotation.__module__.startswith("fastapi.") else [annotation]


def _models_within(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    if model in seen:
        return
    seen.add(model)
    yield model
    for f in model.model_fields.values():
        stack: list[Any] = [f.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                yield from _models_within(t, seen)
            stack.extend(getattr(t, "__args__", ()))


BODY_CALLS = [c for c in ALL_CALLS if c[0] in ("POST", "PUT", "PATCH")]


@pytest.mark.parametrize("call", BODY_CALLS, ids=[route_id(c) for c in BODY_CALLS])
def test_every_json_body_model_refuses_unknown_fields(call: tuple[str, Endpoint]) -> None:
    _, route = call
    for top in _body_models(route):
        for model in _models_within(top, set()):
            assert model.model_config.get("extra") == "forbid", (
                f"{route.path}: body model {model.__name__} accepts unknown fields "
                "(model_config = ConfigDict(extra='forbid'))"
            )


@pytest.mark.parametrize("call", BODY_CALLS, ids=[route_id(c) for c in BODY_CALLS])
def test_every_body_over_the_limit_is_413_before_anything_else(api: Api, call: tuple[str, Endpoint]) -> None:
    method, route = call
    path = concrete_path(route.path)
    limit = body_limit(path)
    big = b"[" + b"0," * (limit // 2) + b"0]"  # just over the route's limit
    r = api.client.request(method, path, content=big,
                           headers={"Authorization": f"Bearer {api.tokens['admin']}",
                                    "Content-Type": "application/json"})
    assert r.status_code == 413, f"{method} {route.path} → {r.status_code}"


def test_every_large_body_route_exists_and_pre_checks_the_routes_own_role() -> None:
    """The body-limit middleware authenticates large uploads itself: its role must be the route's."""
    by_path = {route.path: route for _, route in BODY_CALLS}
    for path, (_, role) in LARGE_BODY_ROUTES.items():
        assert path in by_path, f"{path} is no body route of the app"
        assert required_role(by_path[path]) == role, path


PAGE_PARAMS = {"limit", "page_size", "per_page", "size"}


@pytest.mark.parametrize("call", [c for c in ALL_CALLS if c[0] == "GET"],
                         ids=[route_id(c) for c in ALL_CALLS if c[0] == "GET"])
def test_every_page_size_parameter_has_a_cap(call: tuple[str, Endpoint]) -> None:
    _, route = call
    for param in route.dependant.query_params:
        if param.name in PAGE_PARAMS or param.alias in PAGE_PARAMS:
            bounds = [m for m in getattr(param.field_info, "metadata", []) if hasattr(m, "le") or hasattr(m, "lt")]
            assert bounds, f"{route.path}: query parameter {param.name} has no upper bound (le=…)"


# --------------------------------------------------------------------------- ids (issue 7 item 3)


@pytest.mark.parametrize("encoded", ["%23", "%2B", "cam%2B1", "cam%201", "cam%00", "-cam", "c" * 65],
                         ids=["hash", "plus", "plus-inside", "space", "nul", "leading-dash", "too-long"])
def test_registering_a_device_with_an_invalid_id_is_422(api: Api, encoded: str) -> None:
    r = api.client.put(f"{API}/devices/{encoded}", json={"kind": "camera", "name": "x"},
                       headers={"Authorization": f"Bearer {api.tokens['admin']}"})
    assert r.status_code == 422, r.text
    assert api.services.registry.devices() == []


# --------------------------------------------------------------------------- the schema tells clients


def test_openapi_declares_bearer_auth_and_401_on_every_api_v1_operation(api: Api) -> None:
    schema = api.app.openapi()
    schemes = schema.get("components", {}).get("securitySchemes", {})
    bearer = [name for name, s in schemes.items() if s.get("type") == "http" and s.get("scheme") == "bearer"]
    assert bearer, "no http bearer security scheme in components.securitySchemes"
    for path, ops in schema["paths"].items():
        if not path.startswith(API):
            continue
        for method, op in ops.items():
            security = op.get("security", schema.get("security")) or []
            assert any(name in entry for entry in security for name in bearer), f"{method.upper()} {path}"
