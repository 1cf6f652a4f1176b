"""Reading values out of nested JSON records by dotted path (`candidate.id_card`)."""

from __future__ import annotations

from typing import Any


def get_path(node: Any, path: str | tuple[str, ...]) -> Any:
    """`path` as "a.b.c", or already split (hot loops split once)."""
    for part in path.split(".") if isinstance(path, str) else path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
