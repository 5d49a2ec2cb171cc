"""Township files in CSV: one record per row, column `kind` says which (pure).

Errors name the row (a spreadsheet's numbering: the header is row 1) and the column:
`row 17, column lat: not a number`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from hub.csvsafe import SafeWriter, safe_reader
from hub.registry.model import Device, Group, Township, Village
from hub.registry.schema import (
    CSV_DEVICES,
    CSV_GROUPS,
    CSV_VILLAGES,
    MAX_ERRORS,
    CsvDevice,
    CsvGroup,
    CsvVillage,
    TownshipFileError,
    add_more,
    duplicates,
    message_of,
)

CSV_COLUMNS: Final = (
    "kind", "id", "name", "village", "group", "lat", "lon", "quiet_hours", "stream_url", "tags",
)
IGNORED_COLUMNS: Final = ("password",)  # read by the simulator (device_sim), never stored by the hub


def _split_tags(raw: str) -> dict[str, str] | None:
    tags: dict[str, str] = {}
    for part in raw.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            return None
        tags[key.strip()] = value.strip()
    return tags


def parse_csv(text: str) -> Township:
    """One record per row; column `kind` says which: village, group, camera, speaker or light.

    Row numbers are a spreadsheet's: the header is row 1. Blank rows and rows whose
    first cell starts with `#` are skipped.
    """
    reader = safe_reader(io.StringIO(text))  # undoes the formula escaping of to_csv
    header: list[str] | None = None
    errors: list[str] = []
    rows: dict[str, list[tuple[int, dict[str, Any]]]] = {"village": [], "group": [], "device": []}
    for rownum, cells in enumerate(reader, start=1):
        if not cells or not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [_column_name(c) for c in cells]
            errors += _check_header(header, rownum)
            if errors:
                raise TownshipFileError(errors)
            continue
        record: dict[str, Any] = {}
        tags: dict[str, str] = {}
        for col, cell in zip(header, cells, strict=False):
            value = cell.strip()
            if not value:
                continue
            if col in IGNORED_COLUMNS:
                continue
            if col.startswith("tag:"):
                tags[col[4:]] = value
            elif col == "tags":
                parsed = _split_tags(value)
                if parsed is None:
                    errors.append(f"row {rownum}, column tags: must be key=value pairs separated by ;")
                else:
                    tags.update(parsed)
            else:
                record[col] = value
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            errors.append(f"row {rownum}: more cells than header columns")
        kind = record.get("kind", "").lower()
        if kind in ("camera", "speaker", "light"):
            record["kind"] = kind
            if tags:
                record["tags"] = tags
            rows["device"].append((rownum, record))
            continue
        if kind not in ("village", "group"):
            msg = "required" if not kind else "must be village, group, camera, speaker or light"
            errors.append(f"row {rownum}, column kind: {msg}")
            continue
        record.pop("kind")
        if tags:
            record["tags"] = tags
        rows[kind].append((rownum, record))

    villages = _csv_validate(CSV_VILLAGES, rows["village"], errors, "village")
    groups = _csv_validate(CSV_GROUPS, rows["group"], errors, "group")
    devices = _csv_validate(CSV_DEVICES, rows["device"], errors, "device")
    township = _csv_resolve(villages, groups, devices, errors)
    if errors:
        errors.sort(key=_row_key)
        total = len(errors)
        errors = errors[:MAX_ERRORS]
        add_more(errors, total)
        raise TownshipFileError(errors)
    return township


def _column_name(cell: str) -> str:
    """Column names are case-insensitive; a tag column keeps its key's case (`tag:Vendor`)."""
    name = cell.strip()
    if name.lower().startswith("tag:"):
        return "tag:" + name[4:].strip()
    return name.lower()


def _check_header(header: list[str], rownum: int) -> list[str]:
    errors = []
    for col in header:
        if col not in CSV_COLUMNS and col not in IGNORED_COLUMNS and not col.startswith("tag:"):
            errors.append(f"row {rownum}, column {col or '(empty)'}: unknown column")
    for required in ("kind", "id", "name"):
        if required not in header:
            errors.append(f"row {rownum}: missing column {required}")
    return errors


def _row_key(error: str) -> int:
    m = re.match(r"row (\d+)", error)
    return int(m.group(1)) if m else 0


def _csv_validate(
    adapter: TypeAdapter[Any], rows: list[tuple[int, dict[str, Any]]], errors: list[str], what: str
) -> list[tuple[int, Any]]:
    """Validate all rows of one kind at once; a bad row is reported and left out."""
    if not rows:
        return []
    try:
        return list(zip([r for r, _ in rows], adapter.validate_python([d for _, d in rows]), strict=True))
    except ValidationError as exc:
        bad: set[int] = set()
        for err in exc.errors():
            index, *field = err["loc"]
            assert isinstance(index, int)
            bad.add(index)
            rownum = rows[index][0]
            column = field[0] if field else "kind"
            if err["type"] == "extra_forbidden":
                errors.append(f"row {rownum}, column {column}: not used on a {what} row")
            else:
                errors.append(f"row {rownum}, column {column}: {message_of(err)}")
        good = [r for i, r in enumerate(rows) if i not in bad]
        return list(zip([r for r, _ in good], adapter.validate_python([d for _, d in good]), strict=True))


def _csv_resolve(
    villages: list[tuple[int, CsvVillage]],
    groups: list[tuple[int, CsvGroup]],
    devices: list[tuple[int, CsvDevice]],
    errors: list[str],
) -> Township:
    errors += duplicates([(f"row {r}, column id", v.id) for r, v in villages], "village")
    errors += duplicates([(f"row {r}, column id", g.id) for r, g in groups], "group")
    errors += duplicates([(f"row {r}, column id", d.id) for r, d in devices], "device")
    village_ids = {v.id for _, v in villages}
    group_village: dict[str, str] = {}
    for r, g in groups:
        if g.village not in village_ids:
            errors.append(f"row {r}, column village: unknown village {g.village!r} (add a village row)")
        group_village.setdefault(g.id, g.village)
    out: list[Device] = []
    for r, d in devices:
        village = d.village
        if d.group is not None:
            owner = group_village.get(d.group)
            if owner is None:
                errors.append(f"row {r}, column group: unknown group {d.group!r} (add a group row)")
                continue
            if village is None:
                village = owner
            elif village != owner:
                errors.append(
                    f"row {r}, column group: group {d.group!r} belongs to village {owner!r}, not {village!r}"
                )
                continue
        if village is not None and village not in village_ids:
            errors.append(f"row {r}, column village: unknown village {village!r} (add a village row)")
            continue
        out.append(
            Device(
                id=d.id, kind=d.kind, name=d.name, village=village, group=d.group,
                lat=d.lat, lon=d.lon, tags=d.tags, stream_url=d.stream_url, registered=True,
            )
        )
    return Township(
        None,
        [Village(v.id, v.name, v.lat, v.lon, v.quiet_hours) for _, v in villages],
        [Group(g.id, g.village, g.name) for _, g in groups],
        out,
    )


# ---------------------------------------------------------------- writing back


def to_csv(township: Township) -> str:
    """Township → CSV: village rows, then group rows, then device rows; one `tag:<key>` column per tag."""
    keys = list(dict.fromkeys(k for d in township.devices for k in d.tags))
    out = io.StringIO()
    w = SafeWriter(out, lineterminator="\n")  # cells starting = + - @ are escaped (hub.csvsafe)
    w.writerow([c for c in CSV_COLUMNS if c != "tags"] + [f"tag:{k}" for k in keys])
    blank_tags = [""] * len(keys)
    num: Callable[[float | None], str] = lambda x: "" if x is None else repr(x)  # noqa: E731
    for v in township.villages:
        w.writerow(["village", v.id, v.name, "", "", num(v.lat), num(v.lon), v.quiet_hours or "", "",
                    *blank_tags])
    for g in township.groups:
        w.writerow(["group", g.id, g.name, g.village, "", "", "", "", "", *blank_tags])
    for d in township.devices:
        w.writerow([d.kind, d.id, d.name, d.village or "", d.group or "", num(d.lat), num(d.lon), "",
                    d.stream_url or "", *(d.tags.get(k, "") for k in keys)])
    return out.getvalue()
