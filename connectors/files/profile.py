"""The file-drop profile (`kind: file_drop`): which folder, which files, which column is which field.

Business departments keep re-interview comments and results in spreadsheets with Chinese headers;
`columns` maps each header to a plain field name that the mapping then reads (`path: id_no`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hiresync.config.files import load_yaml_checked

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["source", "kind", "folder", "patterns", "columns"],
    "properties": {
        "source": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "description": {"type": "string"},
        "kind": {"const": "file_drop"},
        "folder": {"type": "string", "minLength": 1, "description": "relative to HIRESYNC_HOME, or absolute"},
        "patterns": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"type": "string", "pattern": r"\.(csv|xlsx)$"}},
        "sheet": {"type": "string", "minLength": 1, "description": "Excel sheet name; default: the first sheet"},
        "csv_encoding": {"type": "string", "minLength": 1},
        "columns": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        },
    },
}


@dataclass(frozen=True)
class FileDropProfile:
    source: str
    file: str
    folder: Path
    patterns: tuple[str, ...]
    sheet: str | None
    csv_encoding: str
    columns: dict[str, str]  # header as written in the file -> field name in the staged payload
    kind: str = "file_drop"

    @classmethod
    def load(cls, path: Path) -> "FileDropProfile":
        doc = load_yaml_checked(path, SCHEMA)
        return cls(source=doc["source"], file=str(path), folder=Path(doc["folder"]), patterns=tuple(doc["patterns"]),
                   sheet=doc.get("sheet"), csv_encoding=doc.get("csv_encoding", "utf-8-sig"),
                   columns=dict(doc["columns"]))
