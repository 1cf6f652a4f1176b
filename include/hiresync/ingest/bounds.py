"""What every pulled record is checked for before it is staged: a vendor's bad day must not end,
stop or bloat a feed.

- A cursor beyond now + the profile's tolerance (`future_tolerance_seconds`) is a vendor's
  mistake: the record is quarantined (FUTURE_CURSOR) and never moves the watermark, which would
  otherwise jump past every later change and end the feed silently.
- Nesting deeper than `limits.max_depth` (TOO_DEEP) or a text longer than `limits.max_field_chars`
  (TOO_LARGE) quarantines the record. What is kept of it is cut at those limits (the key and the
  shallow fields stay, so it can be traced), so a 10 MB transcript is not copied into the hub.
- Bytes that were not valid in the page's charset reach us as lone surrogates (the connector
  decodes with surrogateescape, never with U+FFFD): the record is quarantined (ENCODING) and the
  kept copy shows each such byte as `\\xNN`.

Each check names the field and the rule, never the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

CUT_DEEP = "<cut: nested deeper than the profile's max_depth>"
INGEST_RULES = ("FUTURE_CURSOR", "TOO_DEEP", "TOO_LARGE", "ENCODING")
_UNDECODED = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_field_chars: int
    future_tolerance: timedelta


def check_shape(payload, limits: Limits) -> tuple[object, dict | None]:
    """(payload, or its cut copy when over a limit; {field, rule} of the first breach, or None)."""
    if _within(payload, limits):  # nearly every record: no field paths to build
        return payload, None
    breach = _first_breach(payload, limits)
    if breach is None:
        return payload, None
    return _cut(payload, limits), breach


def check_cursor(cursor: datetime | None, field: str, now: datetime, limits: Limits) -> dict | None:
    if cursor is not None and cursor > now + limits.future_tolerance:
        return {"field": field, "rule": "FUTURE_CURSOR", "value": cursor.isoformat()}  # a time, not personal data
    return None


def _within(payload, limits: Limits) -> bool:
    """True when nothing breaches a limit: the same checks as _first_breach, without naming paths."""
    if isinstance(payload, str):
        return len(payload) <= limits.max_field_chars and (payload.isascii() or not _UNDECODED.search(payload))
    if not isinstance(payload, (dict, list)):
        return True
    max_depth, max_chars = limits.max_depth, limits.max_field_chars
    stack = [(payload, 1)]  # iterative, like _first_breach
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return False
        for value in node.values() if isinstance(node, dict) else node:
            if isinstance(value, str):
                if len(value) > max_chars or (not value.isascii() and _UNDECODED.search(value)):
                    return False
            elif isinstance(value, (dict, list)):
                stack.append((value, depth + 1))
    return True


def _first_breach(payload, limits: Limits) -> dict | None:
    stack = [(payload, "", 1)]  # iterative: a record nested 5,000 levels deep must not blow the stack
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limits.max_depth:
                return {"field": path or "record", "rule": "TOO_DEEP"}
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in items)
        elif isinstance(value, str):
            if len(value) > limits.max_field_chars:
                return {"field": path or "record", "rule": "TOO_LARGE"}
            if not value.isascii() and _UNDECODED.search(value):
                return {"field": path or "record", "rule": "ENCODING"}
    return None


def _cut(payload, limits: Limits):
    root: list = [None]
    stack = [(payload, root, 0, 1)]
    while stack:
        value, parent, slot, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limits.max_depth:
                parent[slot] = CUT_DEEP
                continue
            copy = {} if isinstance(value, dict) else [None] * len(value)
            parent[slot] = copy
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                if isinstance(copy, dict):
                    copy[k] = None
                stack.append((v, copy, k, depth + 1))
        elif isinstance(value, str) and len(value) > limits.max_field_chars:
            parent[slot] = f"<cut: {len(value)} characters, over the profile's max_field_chars>"
        elif isinstance(value, str) and not value.isascii():
            parent[slot] = _UNDECODED.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", value)
        else:
            parent[slot] = value
    return root[0]
