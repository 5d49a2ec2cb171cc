"""`villagehub devices credentials …`: per-device broker credentials from the command line.

    villagehub devices credentials issue cam-001 spk-002      # or --ids-file, --from-registry
    villagehub devices credentials issue --role hub villagehub
    villagehub devices credentials rotate cam-001
    villagehub devices credentials revoke cam-001
    villagehub devices credentials list
    villagehub devices credentials check                       # registry vs credentials
    villagehub devices credentials write-files --password-file … --acl-file … --reload-pidfile …

Passwords are printed once (or written once to a new 0600 file with `--out`);
the hub keeps only their hashes in `<VH_DATA_DIR>/credentials.db`. Any command
given `--password-file` and `--acl-file` (or VH_MOSQUITTO_PASSWORD_FILE and
VH_MOSQUITTO_ACL_FILE) rewrites both files, and with `--reload-pidfile` sends
Mosquitto the SIGHUP that applies them.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hub.clock import SystemClock
from hub.security.credentials import (
    DEFAULT_BROKER_GROUP,
    CredentialError,
    CredentialStore,
    IssuedCredential,
    Role,
    write_secret_file,
)
from hub.settings import Settings, SettingsError, load_settings
from hub.topics import is_valid_id

app = typer.Typer(help="Devices: broker credentials.", no_args_is_help=True)
credentials_app = typer.Typer(
    help="Per-device MQTT credentials, the Mosquitto password file and ACL.", no_args_is_help=True
)
app.add_typer(credentials_app, name="credentials")

out = Console()
REGISTRY_DB = "registry.db"
err = Console(stderr=True)

# The hub's settings (hub.settings): a flag overrides VH_DATA_DIR / VH_TOPIC_ROOT (and VH_CONFIG),
# which override the defaults.
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="the hub's state directory (default: VH_DATA_DIR)", show_default=False)
]
TopicRoot = Annotated[
    str | None, typer.Option("--topic-root", help="topic root (default: VH_TOPIC_ROOT)", show_default=False)
]
PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", envvar="VH_MOSQUITTO_PASSWORD_FILE", help="Mosquitto password_file to rewrite"),
]
AclFile = Annotated[
    Path | None,
    typer.Option("--acl-file", envvar="VH_MOSQUITTO_ACL_FILE", help="Mosquitto acl_file to rewrite"),
]
ReloadPidfile = Annotated[
    Path | None,
    typer.Option("--reload-pidfile", envvar="VH_MOSQUITTO_PIDFILE", help="send SIGHUP to the PID in this file"),
]
Group = Annotated[
    str, typer.Option("--group", help="group given read access to the files ('' for none)")
]
Ids = Annotated[list[str] | None, typer.Argument(help="device ids (usernames)", show_default=False)]


def hub_settings(data_dir: Path | None, topic_root: str | None = None) -> Settings:
    """The hub's settings with the command's flags over them (a bad setting: exit 2, named)."""
    flags = {k: v for k, v in (("data_dir", data_dir), ("topic_root", topic_root)) if v is not None}
    try:
        return load_settings(**flags)
    except SettingsError as exc:
        raise _fail(str(exc)) from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def collect_ids(ids: list[str] | None, ids_file: Path | None, data_dir: Path, from_registry: bool) -> list[str]:
    """Ids from arguments, a file (one per line, `#` comments) and/or the registry; all validated."""
    wanted: list[str] = list(ids or [])
    if ids_file is not None:
        for line in ids_file.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                wanted.append(line)
    if from_registry:
        wanted.extend(_registry_ids(data_dir))
    bad = [i for i in wanted if not is_valid_id(i)]
    if bad:
        raise _fail(
            "invalid id(s), nothing done: "
            + ", ".join(repr(b) for b in bad)
            + " — ids match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
        )
    if not wanted:
        raise _fail("no ids: give them as arguments, with --ids-file, or --from-registry")
    return list(dict.fromkeys(wanted))


def _registry_ids(data_dir: Path) -> list[str]:
    """Registered devices of `<data_dir>/registry.db` (devices seen but not registered get none)."""
    from hub.registry import Registry

    path = data_dir / REGISTRY_DB
    if not path.exists():
        raise _fail(f"no registry at {path}: import the township first, or use --ids-file")
    with Registry(path) as registry:
        return sorted(d.id for d in registry.devices() if d.registered)


def _store(data_dir: Path) -> CredentialStore:
    return CredentialStore.in_data_dir(data_dir, SystemClock())


def _show_once(issued: list[IssuedCredential], secret_out: Path | None) -> None:
    if secret_out is not None:
        n = write_secret_file(secret_out, issued)
        out.print(f"{n} credential(s) written to {secret_out} (mode 0600). They are not shown again.")
        return
    # Plain lines, not a table: a terminal must never wrap or truncate a password.
    typer.echo("# broker credentials, shown once: store them now")
    typer.echo("username\tpassword\trole")
    for cred in issued:
        typer.echo(f"{cred.username}\t{cred.password}\t{cred.role}")
    if any(c.role == "hub" for c in issued):
        out.print("Hub: set VH_MQTT_URL=mqtt://<username>:<password>@127.0.0.1:1883")


def _apply(
    store: CredentialStore,
    password_file: Path | None,
    acl_file: Path | None,
    topic_root: str,
    group: str,
    reload_pidfile: Path | None,
) -> None:
    if password_file is None or acl_file is None:
        if password_file is not None or acl_file is not None:
            raise _fail("give both --password-file and --acl-file")
        out.print("Record updated. Apply it: `villagehub devices credentials write-files …` and reload Mosquitto.")
        return
    try:
        users, hubs = store.write_files(password_file, acl_file, topic_root=topic_root, group=group or None)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    out.print(f"wrote {password_file} ({users} users) and {acl_file} ({hubs} hub users)")
    if reload_pidfile is not None:
        pid = int(reload_pidfile.read_text().strip())
        os.kill(pid, signal.SIGHUP)
        out.print(f"sent SIGHUP to Mosquitto (pid {pid}): revoked clients are disconnected")
    else:
        out.print("Reload Mosquitto to apply: systemctl reload mosquitto (SIGHUP)")


@credentials_app.command()
def issue(
    ids: Ids = None,
    ids_file: Annotated[Path | None, typer.Option("--ids-file", help="one id per line")] = None,
    from_registry: Annotated[bool, typer.Option("--from-registry", help="every registered device without one")] = False,
    role: Annotated[str, typer.Option("--role", help="device or hub")] = "device",
    secret_out: Annotated[Path | None, typer.Option("--out", help="write passwords to this new 0600 CSV file")] = None,
    data_dir: DataDir = None,
    topic_root: TopicRoot = None,
    password_file: PasswordFile = None,
    acl_file: AclFile = None,
    group: Group = DEFAULT_BROKER_GROUP,
    reload_pidfile: ReloadPidfile = None,
) -> None:
    """Issue a new credential to each id (new or revoked users only; see rotate)."""
    if role not in ("device", "hub"):
        raise _fail("--role must be device or hub")
    role_value: Role = "hub" if role == "hub" else "device"
    s = hub_settings(data_dir, topic_root)
    store = _store(s.data_dir)
    wanted = collect_ids(ids, ids_file, s.data_dir, from_registry)
    if from_registry:
        active = {r.username for r in store.records() if r.active}
        wanted = [i for i in wanted if i not in active]
    _hand_out(wanted, lambda username: store.issue(username, role_value), secret_out)
    _apply(store, password_file, acl_file, s.topic_root, group, reload_pidfile)


def _hand_out(usernames: list[str], make: Callable[[str], IssuedCredential], secret_out: Path | None) -> None:
    """Issue or rotate each user's password and show every new one once, also when one fails."""
    if secret_out is not None and secret_out.exists():
        raise _fail(f"{secret_out} exists: choose a new file (passwords are written once)")
    issued: list[IssuedCredential] = []
    try:
        for username in usernames:
            issued.append(make(username))
    except CredentialError as exc:
        if issued:
            _show_once(issued, secret_out)
        raise _fail(str(exc)) from None
    _show_once(issued, secret_out)


@credentials_app.command()
def rotate(
    ids: Ids = None,
    ids_file: Annotated[Path | None, typer.Option("--ids-file", help="one id per line")] = None,
    secret_out: Annotated[Path | None, typer.Option("--out", help="write passwords to this new 0600 CSV file")] = None,
    data_dir: DataDir = None,
    topic_root: TopicRoot = None,
    password_file: PasswordFile = None,
    acl_file: AclFile = None,
    group: Group = DEFAULT_BROKER_GROUP,
    reload_pidfile: ReloadPidfile = None,
) -> None:
    """Give each id a new password; the old one stops working when Mosquitto reloads."""
    s = hub_settings(data_dir, topic_root)
    store = _store(s.data_dir)
    _hand_out(collect_ids(ids, ids_file, s.data_dir, False), store.rotate, secret_out)
    _apply(store, password_file, acl_file, s.topic_root, group, reload_pidfile)


@credentials_app.command()
def revoke(
    ids: Ids = None,
    ids_file: Annotated[Path | None, typer.Option("--ids-file", help="one id per line")] = None,
    data_dir: DataDir = None,
    topic_root: TopicRoot = None,
    password_file: PasswordFile = None,
    acl_file: AclFile = None,
    group: Group = DEFAULT_BROKER_GROUP,
    reload_pidfile: ReloadPidfile = None,
) -> None:
    """Revoke each id's credential; at the reload Mosquitto also disconnects it."""
    s = hub_settings(data_dir, topic_root)
    store = _store(s.data_dir)
    for username in collect_ids(ids, ids_file, s.data_dir, False):
        done = store.revoke(username)
        out.print(f"{username}: {'revoked' if done else 'had no active credential'}")
    _apply(store, password_file, acl_file, s.topic_root, group, reload_pidfile)


@credentials_app.command("list")
def list_(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Every broker user with its role and state (never a password or hash)."""
    records = _store(hub_settings(data_dir).data_dir).records()
    if as_json:
        for r in records:
            out.print_json(json.dumps({
                "username": r.username, "role": r.role, "active": r.active,
                "created_at": r.created_at, "updated_at": r.updated_at, "revoked_at": r.revoked_at,
            }))
        return
    table = Table(title=f"Broker users ({len(records)})")
    for col in ("username", "role", "state", "since (UTC)"):
        table.add_column(col)
    for r in records:
        since = r.revoked_at if r.revoked_at is not None and not r.active else r.updated_at
        stamp = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(r.username, r.role, "active" if r.active else "revoked", stamp)
    out.print(table)


@credentials_app.command("write-files")
def write_files(
    password_file: Annotated[
        Path, typer.Option("--password-file", envvar="VH_MOSQUITTO_PASSWORD_FILE", help="Mosquitto password_file")
    ],
    acl_file: Annotated[Path, typer.Option("--acl-file", envvar="VH_MOSQUITTO_ACL_FILE", help="Mosquitto acl_file")],
    data_dir: DataDir = None,
    topic_root: TopicRoot = None,
    group: Group = DEFAULT_BROKER_GROUP,
    reload_pidfile: ReloadPidfile = None,
) -> None:
    """Write Mosquitto's password file and ACL from the record (atomically, 0640)."""
    s = hub_settings(data_dir, topic_root)
    _apply(_store(s.data_dir), password_file, acl_file, s.topic_root, group, reload_pidfile)


@credentials_app.command()
def check(data_dir: DataDir = None) -> None:
    """Compare the registry with the credentials: exit 1 when they disagree.

    Lists registered devices without an active credential (they cannot connect) and
    active device credentials whose device is not registered (revoke them).
    """
    s = hub_settings(data_dir)
    registered = set(_registry_ids(s.data_dir))
    records = _store(s.data_dir).records()
    active = {r.username for r in records if r.active and r.role == "device"}
    missing = sorted(registered - active)
    orphans = sorted(active - registered)
    out.print(f"{len(registered)} registered devices, {len(active)} active device credentials")
    if missing:
        out.print(f"without a credential ({len(missing)}): " + " ".join(missing))
        out.print("  → villagehub devices credentials issue --from-registry")
    if orphans:
        out.print(f"credential but not registered ({len(orphans)}): " + " ".join(orphans))
        out.print("  → villagehub devices credentials revoke …")
    if missing or orphans:
        raise typer.Exit(1)
    out.print("registry and credentials agree")
