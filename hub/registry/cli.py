"""`villagehub registry …`: import/export a township, list, add and remove devices.

The registry file is `<VH_DATA_DIR>/registry.db`; a running hub picks up changes made
here within a few seconds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.registry import SAMPLE_TOWNSHIP
from hub.registry.model import Device, ImportReport
from hub.registry.store import Registry, RegistryError
from hub.registry.township_file import (
    TownshipFileError,
    parse_township,
    to_csv,
    to_document,
    to_yaml,
)
from hub.settings import SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False)
err = Console(stderr=True)


@contextmanager
def _open() -> Iterator[Registry]:
    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    registry = Registry(settings.data_dir / "registry.db")
    try:
        yield registry
    finally:
        registry.close()


def _fail(errors: list[str], title: str) -> None:
    err.print(f"[red]{title}: {len(errors)} error(s)[/red]")
    for line in errors:
        err.print(f"  {line}", markup=False, highlight=False)
    raise typer.Exit(1)


def _report(report: ImportReport) -> str:
    return (
        f"villages +{report.villages_added} ~{report.villages_updated} -{report.villages_removed}, "
        f"groups +{report.groups_added} ~{report.groups_updated} -{report.groups_removed}, "
        f"devices +{report.devices_added} ~{report.devices_updated} ={report.devices_unchanged} "
        f"-{report.devices_removed} in {report.seconds:.2f} s"
    )


@app.command("import")
def import_(
    file: Annotated[Path | None, typer.Argument(help="township file (.yaml, .yml, .json or .csv); - for stdin")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="remove registered devices, groups and villages the file does not list")] = False,
    fmt: Annotated[Literal["yaml", "csv"] | None, typer.Option("--format", help="override the format guessed from the name")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="import the bundled sample township 示范乡")] = False,
    check: Annotated[bool, typer.Option("--check", help="check the file against the registry and report what would change; write nothing")] = False,
) -> None:
    """Import a township file: all or nothing; errors name the row (CSV) or line (YAML) and field."""
    if sample:
        file = SAMPLE_TOWNSHIP
    if file is None:
        err.print("give a FILE (or --sample)")
        raise typer.Exit(2)
    data = sys.stdin.buffer.read() if str(file) == "-" else _read(file)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    ) as bar:
        parse_task = bar.add_task(f"reading {file.name}", total=None)
        try:
            town = parse_township(data, fmt=fmt, filename=file.name)
        except TownshipFileError as exc:
            bar.stop()
            _fail(exc.errors, str(file))
        bar.update(parse_task, total=1, completed=1)
        task = bar.add_task("importing", total=len(town.villages) + len(town.groups) + len(town.devices))
        with _open() as registry:
            try:
                report = registry.import_township(
                    town, replace=replace, dry_run=check,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
            except RegistryError as exc:
                bar.stop()
                _fail(exc.errors, f"{file} does not fit the registry")
    typer.echo(f"{'checked (nothing written)' if check else 'imported'} {file}: {_report(report)}")


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        err.print(f"cannot read {file}: {exc.strerror}")
        raise typer.Exit(2) from None


@app.command()
def export(
    fmt: Annotated[Literal["yaml", "csv", "json"], typer.Option("--format")] = "yaml",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Write the registered villages, groups and devices as a township file."""
    with _open() as registry:
        town = registry.township(load_settings().township.name)
    if fmt == "csv":
        text = to_csv(town)
    elif fmt == "json":
        text = json.dumps(to_document(town), ensure_ascii=False, indent=1) + "\n"
    else:
        text = to_yaml(town)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(town.devices)} devices to {output}")


@app.command("list")
def list_(
    kind: Annotated[Literal["camera", "speaker", "light"] | None, typer.Option()] = None,
    village: Annotated[str | None, typer.Option()] = None,
    group: Annotated[str | None, typer.Option()] = None,
    unregistered: Annotated[bool, typer.Option("--unregistered", help="only devices seen but not registered")] = False,
) -> None:
    """List devices (registered and unregistered)."""
    with _open() as registry:
        devices = registry.devices(kind=kind, village=village, group=group)
        villages = {v.id: v.name for v in registry.villages()}
        groups = {g.id: g.name for g in registry.groups()}
    if unregistered:
        devices = [d for d in devices if not d.registered]
    table = Table(title=f"{len(devices)} device(s)")
    for col in ("id", "kind", "name", "village", "group", "lat, lon", "registered"):
        table.add_column(col)
    for d in devices:
        table.add_row(
            d.id, d.kind, d.name,
            f"{villages.get(d.village, '')} ({d.village})" if d.village else "",
            f"{groups.get(d.group, '')} ({d.group})" if d.group else "",
            f"{d.lat}, {d.lon}" if d.lat is not None else "",
            "yes" if d.registered else "[yellow]no[/yellow]",
        )
    Console().print(table)


@app.command("add-device")
def add_device(
    device_id: Annotated[str, typer.Argument(metavar="ID")],
    kind: Annotated[Literal["camera", "speaker", "light"], typer.Option()],
    name: Annotated[str, typer.Option()],
    village: Annotated[str | None, typer.Option()] = None,
    group: Annotated[str | None, typer.Option(help="a group id; its village is used when --village is not given")] = None,
    lat: Annotated[float | None, typer.Option()] = None,
    lon: Annotated[float | None, typer.Option()] = None,
    stream_url: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable")] = None,
) -> None:
    """Register a device (or update a registered one, or register one seen unregistered)."""
    tags: dict[str, str] = {}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail([f"tag: {item!r} is not key=value"], device_id)
        tags[key] = value
    with _open() as registry:
        try:
            dev = registry.upsert_device(
                Device(device_id, kind, name, village, group, lat, lon, tags, stream_url)
            )
        except RegistryError as exc:
            _fail(exc.errors, device_id)
    typer.echo(f"registered {dev.id} ({dev.kind}) in village {dev.village or '-'}, group {dev.group or '-'}")


@app.command("remove-device")
def remove_device(device_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Remove a device from the registry (if it keeps publishing it comes back as unregistered)."""
    with _open() as registry:
        removed = registry.delete_device(device_id)
    if not removed:
        err.print(f"no device {device_id}")
        raise typer.Exit(1)
    typer.echo(f"removed {device_id}")
