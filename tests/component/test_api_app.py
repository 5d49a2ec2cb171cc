"""`create_app` over module-level routers: what each app keeps to itself, and every service the
container holds. In-process, on the embedded SQLite stores (no servers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.api.routes.tokens import UI_AUDIT_PER_MINUTE
from hub.bootstrap import build_services
from hub.clock import ManualClock
from hub.services import Services
from hub.settings import load_settings

pytestmark = pytest.mark.component


@contextlib.contextmanager
def served(data: Path, township: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    services: Services = build_services(load_settings(data_dir=data, influx_url=None, township_name=township),
                                        ManualClock())
    headers = {"Authorization": f"Bearer {services.tokens.create('op', 'operator')}"}
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            yield client, headers
    finally:
        for closing in (services.registry.close, services.alerts.close, services.tokens.close,
                        services.store.close):
            with contextlib.suppress(Exception):
                closing()


def test_two_apps_answer_their_own_overview_although_the_routers_are_shared(tmp_path: Path) -> None:
    # Both clocks stand still: a cache shared between apps would answer the first app's overview.
    with served(tmp_path / "a", "东乡") as (a, ha), served(tmp_path / "b", "西乡") as (b, hb):
        assert a.get("/api/v1/overview", headers=ha).json()["township"] == "东乡"
        assert b.get("/api/v1/overview", headers=hb).json()["township"] == "西乡"
        assert a.get("/api/v1/overview", headers=ha).json()["township"] == "东乡"


def test_the_app_refuses_a_tokens_wall_screen_audit_entries_past_the_rate_with_429(tmp_path: Path) -> None:
    entry = {"action": "emergency.confirm"}
    with served(tmp_path / "a", "东乡") as (a, ha):
        codes = [a.post("/api/v1/audit", json=entry, headers=ha).status_code
                 for _ in range(UI_AUDIT_PER_MINUTE + 1)]
        assert codes[:-1] == [201] * UI_AUDIT_PER_MINUTE and codes[-1] == 429


def test_every_service_is_in_the_container_and_answers_after_the_role_check(tmp_path: Path) -> None:
    # build_services builds every capability: broadcasts, snapshots, the ledger, lights, rankings
    with served(tmp_path / "a", "东乡") as (client, headers):
        assert client.get("/api/v1/broadcasts/now").status_code == 401
        for path in ("/api/v1/broadcasts/now", "/api/v1/cameras/health", "/api/v1/problems", "/api/v1/lights",
                     "/api/v1/rankings/periods"):
            r = client.get(path, headers=headers)
            assert r.status_code == 200, (path, r.status_code, r.text)
