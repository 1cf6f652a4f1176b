"""Spreadsheet cells from outside text (finding 13: CSV / formula injection).

A vendor's comment, a name or a phone number that starts with `=`, `+`, `-` or `@` (also after
leading spaces, a tab, a CR or a line break, and the full-width forms an IME types) is run as a
formula when an HR user opens the file in Excel or WPS: `=HYPERLINK(...)` exfiltrates, `=cmd|...`
runs. Every spreadsheet or CSV HireSync writes goes through `write_table`, which prefixes such a
text cell with `'` (the OWASP rule: the cell then shows as text); numbers stay numbers. The hub and
the targets keep the value as it came: this is about the file format, not the data.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from hiresync.config.files import create_private

FORMULA_STARTS = "=+-@＝＋－＠"
LEADING_SPACE = " \t\r\n\u3000"


def neutralize_cell(value: Any) -> Any:
    """The value as a spreadsheet may hold it: text that a spreadsheet would read as a formula gets a
    leading `'`; everything else (numbers, dates, None, other text) is returned unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "\t\r\n" or value.lstrip(LEADING_SPACE)[:1] in tuple(FORMULA_STARTS):
        return "'" + value
    return value


def write_table(out: Path, header: Sequence[str], rows: Iterable[Sequence[Any]], *, sheet: str = "Sheet1") -> int:
    """Write a new `.csv` (UTF-8 with BOM, so Excel reads Chinese) or `.xlsx` file only its owner can read,
    every cell neutralised. Returns the number of rows written. Never over an existing file or a symlink."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ValueError("a table is written as .csv or .xlsx")
    fd = create_private(out)
    count = 0
    try:
        if suffix == ".csv":
            with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as f:
                writer = csv.writer(f)
                writer.writerow([neutralize_cell(h) for h in header])
                for row in rows:
                    writer.writerow([neutralize_cell(v) for v in row])
                    count += 1
        else:
            from openpyxl import Workbook  # only when a workbook is written

            wb = Workbook(write_only=True)
            ws = wb.create_sheet(sheet)
            ws.append([_xlsx_cell(ws, h) for h in header])
            for row in rows:
                ws.append([_xlsx_cell(ws, v) for v in row])
                count += 1
            with os.fdopen(fd, "wb") as f:
                wb.save(f)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return count


def _xlsx_cell(ws, value: Any):
    from openpyxl.cell import WriteOnlyCell

    value = neutralize_cell(value)
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"  # text, whatever it looks like: openpyxl would make "=..." a formula
    return cell
