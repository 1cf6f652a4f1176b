"""Paginators: given the last response, the query parameters of the next page, or None."""

from __future__ import annotations

from typing import Protocol

from connectors.records import get_path


class Paginator(Protocol):
    def next_params(self, body: dict) -> dict | None: ...


class CursorPaginator:
    """The body carries an opaque cursor for the next page; null or missing means the last page."""

    def __init__(self, cursor_path: str, cursor_param: str):
        self.cursor_path, self.cursor_param = cursor_path, cursor_param

    def next_params(self, body: dict) -> dict | None:
        cursor = get_path(body, self.cursor_path)
        return {self.cursor_param: cursor} if cursor else None


def paginator_for(spec: dict) -> Paginator:
    if spec["type"] == "cursor":
        return CursorPaginator(spec["cursor_path"], spec["cursor_param"])
    raise ValueError(f"unknown paginator type {spec['type']!r}")  # the profile schema prevents this
