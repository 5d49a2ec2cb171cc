"""`villagehub`: serve, demo, sim, token, registry, devices (PROTOCOL §8).

Every command takes its settings the same way: a flag overrides the `VH_*` variable, which
overrides the default. Start-up problems (bad settings, a port in use) are one clear line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hub.registry.cli import app as registry_app
from hub.security.cli import app as devices_app
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


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@app.command()
def serve() -> None:
    """Run the hub: HTTP API and wall screen, MQTT consumers, scheduler."""
    from hub.bootstrap import run_hub
    from hub.logconfig import configure_logging
    from hub.preflight import http_port_problem

    settings = _settings()
    configure_logging(settings.log_level)
    problem = http_port_problem(settings.http.host, settings.http.port)
    if problem:
        raise _fail(f"villagehub serve: {problem}")
    try:
        run_hub(settings)
    except SettingsError as exc:  # e.g. the data directory cannot be used
        raise _fail(f"villagehub serve: {exc}", 2) from None


@app.command()
def demo(
    data_dir: Annotated[Path | None, typer.Option(help="where the demo keeps its state (default: VH_DATA_DIR, else a temp dir removed at exit)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="HTTP port of the API and wall screen (default: VH_HTTP_PORT, else 8000)")] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on (default: VH_HTTP_HOST, else 127.0.0.1)")] = None,
    township: Annotated[Path | None, typer.Option(help="township file (default: the bundled sample)")] = None,
    time_scale: Annotated[float, typer.Option(help="simulated clock speed for the camera scenes")] = 60.0,
    broker: Annotated[str, typer.Option(help="auto (Mosquitto when installed), mosquitto or embedded; ignored when VH_MQTT_URL is set")] = "auto",
) -> None:
    """A whole township on this machine: broker, stores, simulated devices, the wall screen.

    Honours the VH_* settings like `serve` (VH_HTTP_PORT, VH_HTTP_HOST, VH_DATA_DIR,
    VH_BOOTSTRAP_TOKEN, VH_MQTT_URL, ...); the flags override them."""
    from hub.demo import DemoError, run_demo
    from hub.logconfig import configure_logging

    if broker not in ("auto", "mosquitto", "embedded"):
        raise _fail("--broker must be auto, mosquitto or embedded", 2)
    flags = {k: v for k, v in (("data_dir", data_dir), ("http_port", port), ("http_host", host)) if v is not None}
    try:
        configure_logging(load_settings(**flags).log_level)
        run_demo(flags, township=township, time_scale=time_scale, broker_kind=broker)
    except SettingsError as exc:
        raise _fail(str(exc), 2) from None
    except DemoError as exc:
        raise _fail(f"villagehub demo: {exc}") from None


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="viewer, operator or admin")],
    name: Annotated[str, typer.Option(help="who or what uses the token")],
) -> None:
    """Print a new API token (shown once; only its hash is stored). Recorded in the audit log."""
    from hub.auth import TokenStore, cli_principal
    from hub.clock import SystemClock
    from hub.roles import ROLES

    if role not in ROLES:
        typer.echo(f"--role must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    settings = _settings()
    store = TokenStore(settings.data_dir / "hub.db", clock=SystemClock())
    try:
        token = store.create(name, role)
        store.audit(cli_principal(), "token.create", name, role)
        typer.echo(token)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()


@token_app.command("list")
def token_list() -> None:
    """List tokens (ids, names, roles; never the tokens)."""
    from hub.auth import TokenStore
    from hub.clock import SystemClock

    store = TokenStore(_settings().data_dir / "hub.db", clock=SystemClock())
    for t in store.tokens():
        state = "revoked" if t.revoked_at else "active"
        typer.echo(f"{t.token_id}  {t.role:8}  {state:8}  {t.name}")
    store.close()


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token by the exact id `token list` shows (a running hub stops accepting it within
    5 s). Recorded in the audit log."""
    from hub.auth import TokenStore, cli_principal
    from hub.clock import SystemClock

    store = TokenStore(_settings().data_dir / "hub.db", clock=SystemClock())
    ok = store.revoke(token_id)
    if ok:
        store.audit(cli_principal(), "token.revoke", token_id)
    store.close()
    if not ok:
        typer.echo(f"no active token with id {token_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id}")


@app.command(
    "sim", add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def sim(ctx: typer.Context) -> None:
    """The device simulator: cameras and speakers against any broker (`villagehub sim --help`)."""
    # Imported here, not with the CLI: the simulator's scenes load OpenCV and numpy, which
    # `villagehub serve` has no use for until a snapshot comes (~55 MB of memory).
    from device_sim.cli import app as sim_app

    sim_app(args=ctx.args, prog_name="villagehub sim")


app.add_typer(registry_app, name="registry", help="The device registry: import/export a township, list devices.")
app.add_typer(devices_app, name="devices", help="Device credentials for the broker (password file and ACL).")


def main() -> None:
    from hub.preflight import restrict_umask

    restrict_umask()  # everything the hub writes (data dir, databases, spool, snapshots) is private
    app(prog_name="villagehub")


if __name__ == "__main__":  # pragma: no cover
    main()
