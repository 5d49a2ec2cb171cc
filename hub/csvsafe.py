"""CSV cells that a spreadsheet will not run as formulas (CSV injection, OWASP) — pure.

Every CSV the hub writes passes its text cells through `escape_cell`: a cell whose first
character (after any leading apostrophes) is `=`, `+`, `-`, `@`, tab or carriage return gets a
leading `'`, which spreadsheets show as text. Plain numbers (`-7`, `+3`, `-114.25`, `1e-3`)
are left alone. Readers of the hub's own CSV files undo it with `unescape_cell`, so an
export imports back unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

FORMULA_STARTS: Final = frozenset("=+-@\t\r")
_NUMBER: Final = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _starts_formula(value: str) -> bool:
    """The first character after any leading apostrophes would start a formula."""
    return value.lstrip("'")[:1] in FORMULA_STARTS and not _NUMBER.fullmatch(value)


def escape_cell(value: str) -> str:
    return "'" + value if value and _starts_formula(value) else value


def unescape_cell(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and _starts_formula(cell) else cell


class SafeWriter:
    """A `csv.writer` whose text cells pass through `escape_cell`."""

    def __init__(self, f: Any, **fmt: Any) -> None:
        self._w = csv.writer(f, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._w.writerow([escape_cell(c) if isinstance(c, str) else c for c in row])


def safe_reader(f: Iterable[str], **fmt: Any) -> Iterator[list[str]]:
    """`csv.reader` rows with `unescape_cell` applied: reads back what `SafeWriter` wrote."""
    for row in csv.reader(f, **fmt):
        yield [unescape_cell(c) for c in row]
