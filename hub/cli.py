"""`villagehub`: serve, demo, sim, token, registry, devices (PROTOCOL §8)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from hub.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="villagehub",
    help="VillageHub — the monitoring hub for smart villages (一屏知全域、一网管全局).",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="API tokens (roles: viewer, operator, admin).", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def serve() -> None:
    """Run the hub: HTTP API and wall screen, MQTT consumers, scheduler."""
    from hub.runtime import run_hub

    run_hub(_settings())


@app.command()
def demo(
    data_dir: Annotated[Path | None, typer.Option(help="where the demo keeps its state (default: a temp dir)")] = None,
    port: Annotated[int, typer.Option(help="HTTP port of the API and wall screen")] = 8000,
    township: Annotated[Path | None, typer.Option(help="township file (default: the bundled sample)")] = None,
    time_scale: Annotated[float, typer.Option(help="simulated clock speed for the camera scenes")] = 60.0,
    broker: Annotated[str, typer.Option(help="auto (Mosquitto when installed), mosquitto or embedded")] = "auto",
) -> None:
    """A whole township on this machine: broker, stores, simulated devices, the wall screen."""
    from hub.demo import run_demo

    if broker not in ("auto", "mosquitto", "embedded"):
        typer.echo("--broker must be auto, mosquitto or embedded", err=True)
        raise typer.Exit(2)
    run_demo(data_dir=data_dir, port=port, township=township, time_scale=time_scale, broker_kind=broker)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="viewer, operator or admin")],
    name: Annotated[str, typer.Option(help="who or what uses the token")],
) -> None:
    """Print a new API token (shown once; only its hash is stored)."""
    from hub.auth import ROLES, TokenStore

    if role not in ROLES:
        typer.echo(f"--role must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    settings = _settings()
    store = TokenStore(settings.data_dir / "hub.db")
    try:
        typer.echo(store.create(name, role))  # type: ignore[arg-type]
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()


@token_app.command("list")
def token_list() -> None:
    """List tokens (ids, names, roles; never the tokens)."""
    from hub.auth import TokenStore

    store = TokenStore(_settings().data_dir / "hub.db")
    for t in store.tokens():
        state = "revoked" if t.revoked_at else "active"
        typer.echo(f"{t.token_id}  {t.role:8}  {state:8}  {t.name}")
    store.close()


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by the id `token list` shows."""
    from hub.auth import TokenStore

    store = TokenStore(_settings().data_dir / "hub.db")
    ok = store.revoke(token_id)
    store.close()
    if not ok:
        typer.echo(f"no active token with id {token_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id}")


def _mount(module: str, name: str, help_text: str) -> None:
    try:
        sub = importlib.import_module(module).app
    except (ModuleNotFoundError, AttributeError):
        return
    app.add_typer(sub, name=name, help=help_text)


_mount("device_sim.cli", "sim", "The device simulator: cameras and speakers against any broker.")
_mount("hub.registry.cli", "registry", "The device registry: import/export a township, list devices.")
_mount("hub.security.cli", "devices", "Device credentials for the broker (password file and ACL).")


def main() -> None:
    app(prog_name="villagehub")


if __name__ == "__main__":  # pragma: no cover
    main()
