"""The docker compose deployment is safe by default (issue 11 item 11): the hub and Grafana
listen on the host's loopback only (a TLS reverse proxy in front, docs/deploy.md), no password
is written in the compose file (they come from `.env`, whose template `.env.example` lists every
variable the compose file needs), and the `?token=` address is documented as kiosk-only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
VAR = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def env_example() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.mark.parametrize("service", ["hub", "grafana"])
def test_web_ports_are_published_on_the_loopback_only(service: str) -> None:
    ports = COMPOSE["services"][service].get("ports", [])
    assert ports, f"{service} publishes no port"
    for p in ports:
        assert str(p).startswith("127.0.0.1:"), f"{service} port {p!r} is open to the network"


def test_grafana_admin_password_comes_from_env_without_a_default() -> None:
    env = COMPOSE["services"]["grafana"]["environment"]
    pw = env.get("GF_SECURITY_ADMIN_PASSWORD", "")
    m = VAR.fullmatch(str(pw))
    assert m, f"GF_SECURITY_ADMIN_PASSWORD must be a ${{VAR}} from .env, got {pw!r}"
    assert (m.group(2) or "").startswith(":?"), "the compose file must refuse to start without it (no default)"


def test_no_secret_has_a_default_in_the_compose_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for name, default in ((m.group(1), m.group(2) or "") for m in VAR.finditer(text)):
        if any(w in name for w in ("PASSWORD", "TOKEN", "SECRET")) or name == "VH_MQTT_URL":
            assert default.startswith(":?"), f"${{{name}}} must have no default ({default!r})"


def test_env_example_lists_every_variable_the_compose_file_needs_with_no_value() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    needed = {m.group(1) for m in VAR.finditer(text) if (m.group(2) or "").startswith(":?")}
    example = env_example()
    assert needed <= set(example), needed - set(example)
    for name in needed:
        assert example[name] == "", f"{name} in .env.example must be empty (a shipped value would be a shared secret)"


def test_env_files_with_secrets_are_not_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored or "/.env" in ignored


def test_deploy_docs_name_the_tls_proxy_and_the_kiosk_only_token_url() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "127.0.0.1:8000" in doc and "TLS" in doc and "reverse proxy" in doc
    assert "?token=" in doc and "kiosk" in doc.lower()
    assert "GRAFANA_ADMIN_PASSWORD" in doc and ".env.example" in doc
