"""Township files in YAML (or JSON): nested township → villages → groups → devices (pure).

Errors name the line and the path: `line 57, township.villages[2].groups[0].devices[3].kind:
must be camera, speaker or light`. Lines are only worked out when there are errors.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from hub.registry.model import Device, Group, Township, Village
from hub.registry.schema import (
    MAX_ERRORS,
    FileIn,
    TownshipFileError,
    add_more,
    device_of,
    dotted,
    duplicates,
    message_of,
)

yaml_rs: Any
try:  # optional accelerator (pip install yaml-rs); PyYAML is the fallback
    yaml_rs = importlib.import_module("yaml_rs")
except ImportError:  # pragma: no cover - depends on the environment
    yaml_rs = None


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


_ALIAS = re.compile(r"(?:^|[\s\[{,:-])\*[^\s,\]}]+", re.MULTILINE)


def _alias_line(text: str) -> int | None:
    """1-based line of the first YAML alias, or None. The regex is a cheap pre-check; a `*`
    that it finds inside a quoted or plain scalar (`name: "-*"`) is told apart by the scanner."""
    suspect = _ALIAS.search(text)
    if suspect is None:
        return None
    try:
        for token in yaml.scan(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(token, yaml.AliasToken):
                return int(token.start_mark.line) + 1
    except yaml.YAMLError:  # unreadable past some point: refuse what looks like an alias
        return text.count("\n", 0, suspect.start()) + 1
    return None


def load_yaml(text: str) -> Any:
    """YAML → plain data. yaml-rs (Rust, ~20x faster: 100k devices in under a second) when
    installed, else PyYAML's C loader; both are safe loaders. Syntax errors name line and column.
    Aliases (`*name`) are refused: a township file never needs them, and PyYAML expands them
    without a limit ("billion laughs")."""
    line = _alias_line(text)
    if line is not None:
        raise TownshipFileError([f"line {line}: YAML aliases (*name) are not allowed in a township file"])
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
        parsed = FileIn.model_validate(doc)
    except ValidationError as exc:
        errors += [f"{dotted(e['loc']) or 'document'}: {message_of(e)}" for e in exc.errors()]
        parsed = None
    if errors:
        total = len(errors)
        errors = errors[:MAX_ERRORS]
        if text is not None:
            errors = _with_lines(text, errors)
        add_more(errors, total)
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
            devices.extend(device_of(d, v.id, g.id) for d in g.devices)
        devices.extend(device_of(d, v.id, None) for d in v.devices)
    devices.extend(device_of(d, None, None) for d in t.devices)
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
        errors += duplicates([(p, i) for p, i in pairs if isinstance(i, str)], what)
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
            _clean({"id": g.id, "name": g.name, "devices": [_device_doc(d) for d in by_group.get(g.id, [])]})
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


_PLAIN = re.compile(r"[^\W\d_](?:[\w\-. ]*[\w\-.])?")
_RESERVED = frozenset({"yes", "no", "y", "n", "on", "off", "true", "false", "null", "inf", "nan", "infinity"})


class _QuotingDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Writes a string plain only when no YAML reader could take it for anything but text."""


def _represent_str(dumper: Any, value: str) -> Any:
    plain = _PLAIN.fullmatch(value) is not None and value.lower() not in _RESERVED
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=None if plain else '"')


_QuotingDumper.add_representer(str, _represent_str)


def _reads_back(text: str, doc: Any) -> bool:
    try:
        return bool(load_yaml(text) == doc)
    except TownshipFileError:
        return False


def to_yaml(township: Township) -> str:
    """Township → YAML that `load_yaml` reads back exactly (checked: text that looks like a
    number, a date or a boolean is quoted; JSON, which is YAML too, is the last resort)."""
    doc = to_document(township)
    if yaml_rs is not None:
        out: str = yaml_rs.dumps(doc).removeprefix("---\n")
        if _reads_back(out, doc):
            return out
    out = yaml.dump(doc, Dumper=_QuotingDumper, allow_unicode=True, sort_keys=False, width=1000)
    if _reads_back(out, doc):
        return out
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
