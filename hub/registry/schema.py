"""The township file schema: field rules, pydantic models and error wording (pure).

Messages are short and say what to fix: `must be camera, speaker or light`, `not a number`,
`must be between -90 and 90`. Callers prefix them with where the value is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails

from hub.registry.model import Device, Group, Village
from hub.topics import ID_PATTERN

MAX_ERRORS: Final = 200  # more than this and the file is probably not a township file at all

_QUIET_PATTERN: Final = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"
_PATTERN_RULES: Final = {
    ID_PATTERN: "must be 1-64 letters, digits, _ or -, starting with a letter or digit",
    _QUIET_PATTERN: "must be HH:MM-HH:MM, e.g. 22:00-06:00",
}
_RANGES: Final = {"lat": (-90, 90), "lon": (-180, 180)}
_URL_SCHEMES: Final = ("rtsp://", "rtsps://", "http://", "https://")


class TownshipFileError(ValueError):
    """A township file that cannot be imported; `errors` names each row/line and field."""

    def __init__(self, errors: Sequence[str], source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(f"{head}{len(self.errors)} error(s):\n" + "\n".join(self.errors))


# ---------------------------------------------------------------- field checks


def _check_url(v: str | None) -> str | None:
    if v is not None and (len(v) > 512 or not v.lower().startswith(_URL_SCHEMES)):
        raise ValueError("must be an rtsp:// or http(s):// URL of at most 512 characters")
    return v


# Native (Rust) constraints where possible: 100k rows validate without a Python call per field.
Id = Annotated[str, Field(pattern=ID_PATTERN)]
OptId = Annotated[str | None, Field(pattern=ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Lat = Annotated[float | None, Field(ge=-90, le=90)]
Lon = Annotated[float | None, Field(ge=-180, le=180)]
Quiet = Annotated[str | None, Field(pattern=_QUIET_PATTERN)]
Url = Annotated[str | None, AfterValidator(_check_url)]
Tags = dict[str, Annotated[str, Field(coerce_numbers_to_str=True)]]  # YAML `installed: 2023` → "2023"


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: Id
    kind: Literal["camera", "speaker", "light"]
    name: Name
    lat: Lat = None
    lon: Lon = None
    stream_url: Url = None
    tags: Tags = Field(default_factory=dict)
    password: str | None = Field(None, description="for the simulator only; the hub ignores it")


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: Id
    name: Name
    devices: list[DeviceIn] = Field(default_factory=list)


class VillageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: Id
    name: Name
    lat: Lat = None
    lon: Lon = None
    quiet_hours: Quiet = None
    groups: list[GroupIn] = Field(default_factory=list)
    devices: list[DeviceIn] = Field(default_factory=list)


class TownshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = None
    villages: list[VillageIn] = Field(default_factory=list)
    devices: list[DeviceIn] = Field(default_factory=list)


class FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    township: TownshipIn


class CsvVillage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    name: Name
    lat: Lat = None
    lon: Lon = None
    quiet_hours: Quiet = None


class CsvGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    name: Name
    village: Id


class CsvDevice(DeviceIn):
    village: OptId = None
    group: OptId = None


CSV_DEVICES: Final = TypeAdapter(list[CsvDevice])
CSV_VILLAGES: Final = TypeAdapter(list[CsvVillage])
CSV_GROUPS: Final = TypeAdapter(list[CsvGroup])


# ---------------------------------------------------------------- messages


def message_of(err: ErrorDetails) -> str:
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
    if kind == "string_pattern_mismatch":
        return _PATTERN_RULES.get(str((err.get("ctx") or {}).get("pattern")), "has the wrong form")
    if kind in ("greater_than_equal", "less_than_equal") and err["loc"]:
        bounds = _RANGES.get(str(err["loc"][-1]))
        if bounds:
            return f"must be between {bounds[0]} and {bounds[1]}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return msg[:1].lower() + msg[1:]


def dotted(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------- helpers


def device_of(d: DeviceIn, village: str | None, group: str | None) -> Device:
    return Device(
        id=d.id, kind=d.kind, name=d.name, village=village, group=group,
        lat=d.lat, lon=d.lon, tags=d.tags, stream_url=d.stream_url, registered=True,
    )


def duplicates(items: Iterable[tuple[str, str]], what: str) -> list[str]:
    first: dict[str, str] = {}
    errors = []
    for where, ident in items:
        if ident in first:
            errors.append(f"{where}: duplicate {what} id {ident!r} (first at {first[ident]})")
        else:
            first[ident] = where
    return errors


def add_more(errors: list[str], total: int) -> None:
    if total > MAX_ERRORS:
        errors.append(f"… and {total - MAX_ERRORS} more error(s)")


# ---------------------------------------------------------------- single records


def field_errors(model: type[BaseModel], data: dict[str, Any]) -> list[str]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [f"{dotted(e['loc'])}: {message_of(e)}" for e in exc.errors()]
    return []


def village_errors(v: Village) -> list[str]:
    """Field errors of one village record (`lat: must be between -90 and 90`)."""
    return field_errors(CsvVillage, {"id": v.id, "name": v.name, "lat": v.lat, "lon": v.lon,
                                       "quiet_hours": v.quiet_hours})


def group_errors(g: Group) -> list[str]:
    return field_errors(CsvGroup, {"id": g.id, "name": g.name, "village": g.village})


def device_errors(d: Device) -> list[str]:
    return field_errors(CsvDevice, {
        "id": d.id, "kind": d.kind, "name": d.name, "village": d.village, "group": d.group,
        "lat": d.lat, "lon": d.lon, "stream_url": d.stream_url, "tags": d.tags,
    })
