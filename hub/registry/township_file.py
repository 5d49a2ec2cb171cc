"""Township files (YAML or CSV) → validated registry records. Pure: no I/O, no clock.

Errors name where they are — `line 57, township.villages[2].groups[0].devices[3].kind:
must be camera or speaker` for YAML, `row 17, column lat: not a number` for CSV — and
all of them are collected, not just the first. The formats are documented in
docs/registry.md; `to_document` / `to_csv` write them back (round trip).
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails

from hub.registry.model import Device, Group, Township, Village
from hub.topics import is_valid_id

yaml_rs: Any
try:  # optional accelerator (pip install yaml-rs); PyYAML is the fallback
    yaml_rs = importlib.import_module("yaml_rs")
except ImportError:  # pragma: no cover - depends on the environment
    yaml_rs = None

Format = Literal["yaml", "csv"]
MAX_ERRORS: Final = 200  # more than this and the file is probably not a township file at all

_QUIET_RE: Final = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
_URL_SCHEMES: Final = ("rtsp://", "rtsps://", "http://", "https://")
CSV_COLUMNS: Final = (
    "kind", "id", "name", "village", "group", "lat", "lon", "quiet_hours", "stream_url", "tags",
)
IGNORED_COLUMNS: Final = ("password",)  # read by the simulator (device_sim), never stored by the hub


class TownshipFileError(ValueError):
    """A township file that cannot be imported; `errors` names each row/line and field."""

    def __init__(self, errors: Sequence[str], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(f"{head}{len(self.errors)} error(s):\n" + "\n".join(self.errors))


# ---------------------------------------------------------------- field checks


def _check_id(v: str) -> str:
    if not is_valid_id(v):
        raise ValueError("must be 1-64 letters, digits, _ or -, starting with a letter or digit")
    return v


def _check_lat(v: float | None) -> float | None:
    if v is not None and not -90.0 <= v <= 90.0:
        raise ValueError("must be between -90 and 90")
    return v


def _check_lon(v: float | None) -> float | None:
    if v is not None and not -180.0 <= v <= 180.0:
        raise ValueError("must be between -180 and 180")
    return v


def _check_quiet(v: str | None) -> str | None:
    if v is not None and not _QUIET_RE.fullmatch(v):
        raise ValueError("must be HH:MM-HH:MM, e.g. 22:00-06:00")
    return v


def _check_url(v: str | None) -> str | None:
    if v is not None and (len(v) > 512 or not v.lower().startswith(_URL_SCHEMES)):
        raise ValueError("must be an rtsp:// or http(s):// URL of at most 512 characters")
    return v


def _tags_in(v: Any) -> Any:
    """YAML scalars (numbers, booleans) become text: tags are str → str."""
    if isinstance(v, Mapping):
        return {str(k): (str(x) if isinstance(x, int | float | bool) else x) for k, x in v.items()}
    return v


Id = Annotated[str, AfterValidator(_check_id)]
OptId = Annotated[str | None, AfterValidator(lambda v: None if v is None else _check_id(v))]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Lat = Annotated[float | None, AfterValidator(_check_lat)]
Lon = Annotated[float | None, AfterValidator(_check_lon)]
Quiet = Annotated[str | None, AfterValidator(_check_quiet)]
Url = Annotated[str | None, AfterValidator(_check_url)]
Tags = Annotated[dict[str, str], BeforeValidator(_tags_in)]


class _DeviceBase(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: Id
    kind: Literal["camera", "speaker"]
    name: Name
    lat: Lat = None
    lon: Lon = None
    stream_url: Url = None
    tags: Tags = Field(default_factory=dict)
    password: str | None = Field(None, description="for the simulator only; the hub ignores it")


class _GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: Id
    name: Name
    devices: list[_DeviceBase] = Field(default_factory=list)


class _VillageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: Id
    name: Name
    lat: Lat = None
    lon: Lon = None
    quiet_hours: Quiet = None
    groups: list[_GroupIn] = Field(default_factory=list)
    devices: list[_DeviceBase] = Field(default_factory=list)


class _TownshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = None
    villages: list[_VillageIn] = Field(default_factory=list)
    devices: list[_DeviceBase] = Field(default_factory=list)


class _FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    township: _TownshipIn


class _CsvVillage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    name: Name
    lat: Lat = None
    lon: Lon = None
    quiet_hours: Quiet = None


class _CsvGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    name: Name
    village: Id


class _CsvDevice(_DeviceBase):
    village: OptId = None
    group: OptId = None


_CSV_DEVICES: Final = TypeAdapter(list[_CsvDevice])
_CSV_VILLAGES: Final = TypeAdapter(list[_CsvVillage])
_CSV_GROUPS: Final = TypeAdapter(list[_CsvGroup])


# ---------------------------------------------------------------- messages


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "literal_error":
        expected = str((err.get("ctx") or {}).get("expected", "")).replace("'", "")
        return f"must be {expected}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "not a number"
    if kind in ("string_type",):
        return "must be text"
    if kind in ("list_type",):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping"
    if kind == "string_too_short":
        return "must not be empty"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return msg[:1].lower() + msg[1:]


def _dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------- YAML


def _node_line(node: Any, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest node on `loc` in a composed YAML tree."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line = key.start_mark.line + 1
                    nxt = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        node = nxt
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _load_yaml(text: str) -> Any:
    """YAML → plain data. yaml-rs (Rust, ~20x faster: 100k devices in under a second) when
    installed, else PyYAML's C loader; both are safe loaders. Syntax errors name line and column."""
    if yaml_rs is not None:
        try:
            return yaml_rs.loads(text)
        except Exception as exc:  # yaml_rs.YAMLDecodeError; PyYAML words it with a line below
            fast_error = str(exc).splitlines()[0]
    else:
        fast_error = None
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise TownshipFileError([f"{where}not valid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise TownshipFileError([f"not valid YAML: {exc}"]) from None
    if fast_error is not None:
        raise TownshipFileError([f"not valid YAML: {fast_error}"])
    return doc


def from_mapping(doc: Any, *, text: str | None = None) -> Township:
    """A loaded YAML/JSON document (`{"township": {...}}`) → Township, or TownshipFileError."""
    errors = _raw_duplicates(doc)
    try:
        parsed = _FileIn.model_validate(doc)
    except ValidationError as exc:
        errors += [f"{_dotted(e['loc']) or 'document'}: {_message(e)}" for e in exc.errors()]
        parsed = None
    if errors:
        total = len(errors)
        errors = errors[:MAX_ERRORS]
        if text is not None:
            errors = _with_lines(text, errors)
        _more(errors, total)
        raise TownshipFileError(errors)
    assert parsed is not None
    t = parsed.township
    villages: list[Village] = []
    groups: list[Group] = []
    devices: list[Device] = []
    for v in t.villages:
        villages.append(Village(v.id, v.name, v.lat, v.lon, v.quiet_hours))
        for g in v.groups:
            groups.append(Group(g.id, v.id, g.name))
            devices.extend(_device(d, v.id, g.id) for d in g.devices)
        devices.extend(_device(d, v.id, None) for d in v.devices)
    devices.extend(_device(d, None, None) for d in t.devices)
    return Township(t.name, villages, groups, devices)


def _raw_duplicates(doc: Any) -> list[str]:
    """Duplicate ids, found on the raw document so they are reported with the type errors."""

    def items(obj: Any, key: str) -> list[Any]:
        value = obj.get(key) if isinstance(obj, Mapping) else None
        return value if isinstance(value, list) else []

    def ident(obj: Any) -> Any:
        return obj.get("id") if isinstance(obj, Mapping) else None

    town = doc.get("township") if isinstance(doc, Mapping) else None
    vs, gs, ds = [], [], []
    for vi, v in enumerate(items(town, "villages")):
        vpath = f"township.villages[{vi}]"
        vs.append((f"{vpath}.id", ident(v)))
        for gi, g in enumerate(items(v, "groups")):
            gs.append((f"{vpath}.groups[{gi}].id", ident(g)))
            for di, d in enumerate(items(g, "devices")):
                ds.append((f"{vpath}.groups[{gi}].devices[{di}].id", ident(d)))
        for di, d in enumerate(items(v, "devices")):
            ds.append((f"{vpath}.devices[{di}].id", ident(d)))
    for di, d in enumerate(items(town, "devices")):
        ds.append((f"township.devices[{di}].id", ident(d)))
    errors: list[str] = []
    for what, pairs in (("village", vs), ("group", gs), ("device", ds)):
        errors += _duplicates([(p, i) for p, i in pairs if isinstance(i, str)], what)
    return errors


def _with_lines(text: str, errors: list[str]) -> list[str]:
    """Prefix each `path: message` with the line of that path (only done when there are errors)."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return errors
    out: list[tuple[int, str]] = []
    for error in errors:
        path = error.split(":", 1)[0]
        loc: list[int | str] = [
            m.group(1) if m.group(1) else int(m.group(2))
            for m in re.finditer(r"([A-Za-z_]+)|\[(\d+)\]", path)
        ]
        line = _node_line(root, loc)
        out.append((line or 0, f"line {line}, {error}" if line else error))
    return [e for _, e in sorted(out, key=lambda pair: pair[0])]


def _device(d: _DeviceBase, village: str | None, group: str | None) -> Device:
    return Device(
        id=d.id, kind=d.kind, name=d.name, village=village, group=group,
        lat=d.lat, lon=d.lon, tags=d.tags, stream_url=d.stream_url, registered=True,
    )


def _duplicates(items: Iterable[tuple[str, str]], what: str) -> list[str]:
    first: dict[str, str] = {}
    errors = []
    for where, ident in items:
        if ident in first:
            errors.append(f"{where}: duplicate {what} id {ident!r} (first at {first[ident]})")
        else:
            first[ident] = where
    return errors


def _more(errors: list[str], total: int) -> None:
    if total > MAX_ERRORS:
        errors.append(f"… and {total - MAX_ERRORS} more error(s)")


# ---------------------------------------------------------------- CSV


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
    """One record per row; column `kind` says which: village, group, camera or speaker.

    Row numbers are a spreadsheet's: the header is row 1. Blank rows and rows whose
    first cell starts with `#` are skipped.
    """
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    errors: list[str] = []
    rows: dict[str, list[tuple[int, dict[str, Any]]]] = {"village": [], "group": [], "device": []}
    for rownum, cells in enumerate(reader, start=1):
        if not cells or not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in cells]
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
        if kind in ("camera", "speaker"):
            record["kind"] = kind
            if tags:
                record["tags"] = tags
            rows["device"].append((rownum, record))
            continue
        if kind not in ("village", "group"):
            msg = "required" if not kind else "must be village, group, camera or speaker"
            errors.append(f"row {rownum}, column kind: {msg}")
            continue
        record.pop("kind")
        if tags:
            record["tags"] = tags
        rows[kind].append((rownum, record))

    villages = _csv_validate(_CSV_VILLAGES, rows["village"], errors, "village")
    groups = _csv_validate(_CSV_GROUPS, rows["group"], errors, "group")
    devices = _csv_validate(_CSV_DEVICES, rows["device"], errors, "device")
    township = _csv_resolve(villages, groups, devices, errors)
    if errors:
        errors.sort(key=_row_key)
        total = len(errors)
        errors = errors[:MAX_ERRORS]
        _more(errors, total)
        raise TownshipFileError(errors)
    return township


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
                errors.append(f"row {rownum}, column {column}: {_message(err)}")
        good = [r for i, r in enumerate(rows) if i not in bad]
        return list(zip([r for r, _ in good], adapter.validate_python([d for _, d in good]), strict=True))


def _csv_resolve(
    villages: list[tuple[int, _CsvVillage]],
    groups: list[tuple[int, _CsvGroup]],
    devices: list[tuple[int, _CsvDevice]],
    errors: list[str],
) -> Township:
    errors += _duplicates([(f"row {r}, column id", v.id) for r, v in villages], "village")
    errors += _duplicates([(f"row {r}, column id", g.id) for r, g in groups], "group")
    errors += _duplicates([(f"row {r}, column id", d.id) for r, d in devices], "device")
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


# ---------------------------------------------------------------- single records


def _field_errors(model: type[BaseModel], data: dict[str, Any]) -> list[str]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [f"{_dotted(e['loc'])}: {_message(e)}" for e in exc.errors()]
    return []


def village_errors(v: Village) -> list[str]:
    """Field errors of one village record (`lat: must be between -90 and 90`)."""
    return _field_errors(_CsvVillage, {"id": v.id, "name": v.name, "lat": v.lat, "lon": v.lon,
                                       "quiet_hours": v.quiet_hours})


def group_errors(g: Group) -> list[str]:
    return _field_errors(_CsvGroup, {"id": g.id, "name": g.name, "village": g.village})


def device_errors(d: Device) -> list[str]:
    return _field_errors(_CsvDevice, {
        "id": d.id, "kind": d.kind, "name": d.name, "village": d.village, "group": d.group,
        "lat": d.lat, "lon": d.lon, "stream_url": d.stream_url, "tags": d.tags,
    })


# ---------------------------------------------------------------- entry points


def decode(data: bytes | str) -> str:
    """UTF-8 (with or without a BOM, as Excel writes it), else GB18030 (Chinese Excel's CSV)."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                text = "\0"
    if "\0" in text:
        raise TownshipFileError(["not text: a township file is UTF-8 YAML or CSV"])
    return text


def detect_format(text: str, filename: str | None = None) -> Format:
    if filename:
        lower = filename.lower()
        if lower.endswith((".yaml", ".yml", ".json")):
            return "yaml"
        if lower.endswith((".csv", ".txt")):
            return "csv"
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return "yaml" if stripped.startswith(("township", "{", "---")) else "csv"
    return "yaml"


def parse_township(
    data: bytes | str, *, fmt: Format | None = None, filename: str | None = None
) -> Township:
    """Bytes or text of a township file → Township; raises TownshipFileError naming every problem."""
    text = decode(data)
    kind = fmt or detect_format(text, filename)
    try:
        if kind == "csv":
            return parse_csv(text)
        doc = _load_yaml(text)
        if not isinstance(doc, Mapping):
            raise TownshipFileError(["document: must be a mapping with a top-level `township:` key"])
        return from_mapping(doc, text=text)
    except TownshipFileError as exc:
        exc.source = filename
        raise


# ---------------------------------------------------------------- writing back


def _clean(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != {} and v != []}


def _device_doc(d: Device) -> dict[str, Any]:
    return _clean(
        {"id": d.id, "kind": d.kind, "name": d.name, "lat": d.lat, "lon": d.lon,
         "stream_url": d.stream_url, "tags": dict(d.tags)}
    )


def to_document(township: Township) -> dict[str, Any]:
    """Township → the nested YAML/JSON document that `from_mapping` reads back."""
    by_group: dict[str, list[Device]] = {}
    by_village: dict[str, list[Device]] = {}
    loose: list[Device] = []
    for d in township.devices:
        if d.group is not None:
            by_group.setdefault(d.group, []).append(d)
        elif d.village is not None:
            by_village.setdefault(d.village, []).append(d)
        else:
            loose.append(d)
    groups_of: dict[str, list[Group]] = {}
    for g in township.groups:
        groups_of.setdefault(g.village, []).append(g)
    villages = []
    for v in township.villages:
        doc = _clean({"id": v.id, "name": v.name, "lat": v.lat, "lon": v.lon, "quiet_hours": v.quiet_hours})
        doc["groups"] = [
            {"id": g.id, "name": g.name, "devices": [_device_doc(d) for d in by_group.get(g.id, [])]}
            for g in groups_of.get(v.id, [])
        ]
        doc["devices"] = [_device_doc(d) for d in by_village.get(v.id, [])]
        villages.append(_clean(doc))
    body: dict[str, Any] = {}
    if township.name:
        body["name"] = township.name
    body["villages"] = villages
    if loose:
        body["devices"] = [_device_doc(d) for d in loose]
    return {"township": body}


def to_yaml(township: Township) -> str:
    if yaml_rs is not None:
        out: str = yaml_rs.dumps(to_document(township))
        return out.removeprefix("---\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(to_document(township), Dumper=dumper, allow_unicode=True, sort_keys=False, width=120)


def to_csv(township: Township) -> str:
    """Township → CSV with village rows, then group rows, then device rows."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    num: Callable[[float | None], str] = lambda x: "" if x is None else repr(x)  # noqa: E731
    for v in township.villages:
        w.writerow(["village", v.id, v.name, "", "", num(v.lat), num(v.lon), v.quiet_hours or "", "", ""])
    for g in township.groups:
        w.writerow(["group", g.id, g.name, g.village, "", "", "", "", "", ""])
    for d in township.devices:
        tags = ";".join(f"{k}={v}" for k, v in d.tags.items())
        w.writerow([d.kind, d.id, d.name, d.village or "", d.group or "", num(d.lat), num(d.lon), "",
                    d.stream_url or "", tags])
    return out.getvalue()
