"""Township files (YAML or CSV) → validated registry records. Pure: no I/O, no clock.

Errors name where they are — `line 57, township.villages[2].groups[0].devices[3].kind:
must be camera, speaker or light` for YAML, `row 17, column lat: not a number` for CSV — and
all of them are collected, not just the first. The formats are documented in
docs/registry.md; `to_yaml` / `to_csv` write them back (round trip).

This module is the way in; the work is done by `township_yaml`, `township_csv` and `schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from hub.registry.model import Township
from hub.registry.schema import (
    MAX_ERRORS,
    Lat,
    Lon,
    Name,
    OptId,
    Quiet,
    Tags,
    TownshipFileError,
    Url,
    device_errors,
    group_errors,
    village_errors,
)
from hub.registry.township_csv import CSV_COLUMNS, parse_csv, to_csv
from hub.registry.township_yaml import from_mapping, load_yaml, to_document, to_yaml

Format = Literal["yaml", "csv"]

__all__ = [
    "CSV_COLUMNS", "MAX_ERRORS", "Format", "Lat", "Lon", "Name", "OptId", "Quiet", "Tags",
    "TownshipFileError", "Url", "decode", "detect_format", "device_errors", "from_mapping",
    "group_errors", "parse_csv", "parse_township", "to_csv", "to_document", "to_yaml", "village_errors",
]


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
        doc = load_yaml(text)
        if not isinstance(doc, Mapping):
            raise TownshipFileError(["document: must be a mapping with a top-level `township:` key"])
        return from_mapping(doc, text=text)
    except TownshipFileError as exc:
        exc.source = filename
        raise
