"""CSV cells that a spreadsheet will not run as formulas (CSV injection, OWASP) — pure.

Every CSV the hub writes passes its text cells through `escape_cell`: a cell whose first
character (after any leading apostrophes) is `=`, `+`, `-`, `@`, tab or carriage return gets a
leading `'`, which spreadsheets show as text. Plain numbers (`-7`, `+3`, `-114.25`, `1e-3`)
are left alone. Readers of the hub's own CSV files undo it with `unescape_cell`, so an
export imports back unchanged.
"""

from __future__ import annotations

import re
from typing import Final

FORMULA_STARTS: Final = frozenset("=+-@\t\r")
_NUMBER: Final = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _starts_formula(value: str) -> bool:
    """The first character after any leading apostrophes would start a formula."""
    return value.lstrip("'")[:1] in FORMULA_STARTS and not _NUMBER.fullmatch(value)


def escape_cell(value: str) -> str:
    return "'" + value if value and _starts_formula(value) else value


def unescape_cell(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and _starts_formula(cell) else cell
