"""Reading one dropped CSV or Excel file into rows of {field: value}, numbered as the sheet shows them.

Row numbers are the spreadsheet's (the header is row 1), so a department can find a quarantined
row in its own file. Values stay as typed where JSON can carry them (text, numbers); dates and
times become ISO-8601 text without an offset (the mapping says which timezone they are in).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from pathlib import Path
from typing import Any


class FileProblem(Exception):
    """A file that cannot be read as a whole (format, encoding, missing columns); names the file."""

    def __init__(self, file: str, cause: str):
        self.file, self.cause = file, cause
        super().__init__(f"file {file!r}: {cause}")


def read_rows(path: Path, data: bytes, columns: dict[str, str], *, sheet: str | None = None,
              csv_encoding: str = "utf-8-sig") -> list[tuple[int, dict[str, Any]]]:
    """[(row number, {field: value})] for every non-blank data row of the file's bytes."""
    if path.suffix.lower() == ".xlsx":
        table = _xlsx_rows(path.name, data, sheet)
    elif path.suffix.lower() == ".csv":
        table = _csv_rows(path.name, data, csv_encoding)
    else:
        raise FileProblem(path.name, "only .csv and .xlsx files are read")
    try:
        header = [_text(h) for h in next(table)]
    except StopIteration:
        raise FileProblem(path.name, "the file is empty (no header row)") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise FileProblem(path.name, f"header row lacks column(s) {', '.join(missing)}")
    where = {field: header.index(col) for col, field in columns.items()}
    rows = []
    for number, cells in enumerate(table, start=2):
        values = {field: _value(cells[i]) if i < len(cells) else None for field, i in where.items()}
        if any(v is not None for v in values.values()):  # trailing blank rows are common in Excel
            rows.append((number, values))
    return rows


def _xlsx_rows(name: str, data: bytes, sheet: str | None):
    from openpyxl import load_workbook  # only when an Excel file is dropped

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, XML and openpyxl errors all mean "not a readable .xlsx"
        raise FileProblem(name, f"not a readable .xlsx workbook ({type(exc).__name__})") from None
    if sheet is not None and sheet not in book.sheetnames:
        raise FileProblem(name, f"no sheet named {sheet!r}")
    ws = book[sheet] if sheet else book.worksheets[0]
    try:
        yield from ws.iter_rows(values_only=True)
    finally:
        book.close()


def _csv_rows(name: str, data: bytes, encoding: str):
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise FileProblem(name, f"not {encoding} text (set csv_encoding in the profile, e.g. gb18030)") from None
    yield from csv.reader(io.StringIO(text, newline=""))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip() or None
    return value
