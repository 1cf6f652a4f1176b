"""Finding 13: values from vendors that start like a formula (=, +, -, @, also after leading
whitespace, a tab or a CR) are neutralised in every spreadsheet or CSV HireSync writes."""

from __future__ import annotations

import csv
import stat

import pytest

from hiresync.errors import HireSyncError

DANGEROUS = ["=HYPERLINK(\"http://evil\",\"点我\")", "+86 156", "-2+3", "@SUM(A1)", " =1+1", "\t=1+1", "\r=1+1",
             "\u3000=1", "\n@x", "＝1+1", "=张伟"]
HARMLESS = ["张伟", "a=b", "1-2", "email@x.cn", "", "95.5"]


def test_formula_like_text_is_neutralised_and_other_values_pass():
    from hiresync.privacy.cells import neutralize_cell

    for value in DANGEROUS:
        out = neutralize_cell(value)
        assert out == "'" + value, value
    for value in HARMLESS:
        assert neutralize_cell(value) == value
    assert neutralize_cell(-3) == -3 and neutralize_cell(2.5) == 2.5 and neutralize_cell(None) is None


def test_a_csv_written_by_hiresync_holds_no_formula_and_is_private(tmp_path):
    from hiresync.privacy.cells import write_table

    out = tmp_path / "report.csv"
    write_table(out, ["姓名", "评语"], [[v, "好"] for v in DANGEROUS + HARMLESS])
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["姓名", "评语"]
    cells = [r[0] for r in rows[1:]]
    assert not [c for c in cells if c.lstrip(" \t\r\n\u3000")[:1] and c.lstrip(" \t\r\n\u3000")[0] in "=+-@＝＋－＠"]
    assert cells == ["'" + v for v in DANGEROUS] + HARMLESS
    with pytest.raises(HireSyncError):  # never over an existing file
        write_table(out, ["a"], [["b"]])


def test_an_excel_workbook_written_by_hiresync_holds_no_formula(tmp_path):
    from openpyxl import load_workbook

    from hiresync.privacy.cells import write_table

    out = tmp_path / "report.xlsx"
    write_table(out, ["姓名", "分数"], [[v, -1.5] for v in DANGEROUS] + [["张伟", 88]])
    ws = load_workbook(out).active
    cells = [row for row in ws.iter_rows(min_row=2)]
    assert all(c[0].data_type == "s" for c in cells)
    # XML keeps a CR as a line break: compare with that
    assert [c[0].value for c in cells] == ["'" + v.replace("\r", "\n") for v in DANGEROUS] + ["张伟"]
    assert cells[0][1].value == -1.5 and cells[-1][1].value == 88  # numbers stay numbers
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
