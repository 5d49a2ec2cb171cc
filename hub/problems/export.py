"""The ledger as a table for the township's paperwork: CSV (UTF-8 with BOM, so spreadsheet
programs read the Chinese right) and XLSX (openpyxl), with Chinese column headers.

Cells a spreadsheet would take for a formula (starting with = + - @, a tab or a carriage
return) are written with a leading `'` in the CSV; in the XLSX every text cell is stored as
a string, never as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from hub.csvsafe import escape_cell
from hub.problems.model import CATEGORIES, STATE_ZH, Problem

XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADERS: Final[tuple[str, ...]] = (
    "编号", "村", "村民组", "类别", "标题", "问题描述", "设备", "来源告警", "责任人", "整改期限",
    "状态", "是否超期", "发现时间", "登记人", "更新时间", "销号时间", "整改前照片", "整改后照片", "办理记录",
)
_COLUMN_WIDTHS: Final = (16, 12, 12, 10, 28, 40, 14, 22, 10, 17, 8, 8, 17, 10, 17, 17, 10, 10, 60)


def rows(problems: Iterable[Problem], now: float, zone: ZoneInfo,
         village_name: Callable[[str], str | None], group_name: Callable[[str], str | None]) -> list[list[str]]:
    def t(ts: float | None) -> str:
        return "" if ts is None else datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")

    out = []
    for p in problems:
        history = "；".join(
            f"{t(h.ts)} {h.by} {STATE_ZH.get(h.from_state, '') + '→' if h.from_state else ''}"
            f"{STATE_ZH.get(h.to_state, h.to_state)}" + (f"（{h.note}）" if h.note else "")
            for h in p.history
        )
        out.append([
            p.id, village_name(p.village) or p.village, (group_name(p.group) or p.group) if p.group else "",
            CATEGORIES.get(p.category, p.category), p.title, p.description, p.device_id or "", p.alert_key or "",
            p.owner or "", t(p.deadline), STATE_ZH.get(p.state, p.state), "是" if p.is_overdue(now) else "否",
            t(p.created_at), p.created_by, t(p.updated_at), t(p.closed_at),
            str(sum(ph.stage == "before" for ph in p.photos)), str(sum(ph.stage == "after" for ph in p.photos)),
            history,
        ])
    return out


def to_csv(table: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in table:
        writer.writerow([escape_cell(c) for c in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(table: list[list[str]], title: str = "整改台账") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    ws.append(list(HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for r, row in enumerate(table, start=2):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
            cell.data_type = "s"  # text, never a formula
            cell.alignment = Alignment(vertical="top", wrap_text=c in (5, 6, 19))
    for i, width in enumerate(_COLUMN_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(HEADERS))}{max(1, len(table) + 1)}"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
