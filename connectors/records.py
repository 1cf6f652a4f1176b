"""Reading values out of nested JSON records by dotted path (`candidate.id_card`)."""

from __future__ import annotations

from typing import Any


def get_path(node: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
