"""Paginators: the parameters of the first page, and given a page, how to ask for the next one.

Every paginator also stops on an empty page (RestSource does that), so a vendor that miscounts
its total cannot make a run loop forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urljoin

from connectors.records import get_path


@dataclass(frozen=True)
class Page:
    url: str              # the URL requested (without the query), to resolve relative next links
    params: dict          # the query parameters sent (before auth added its own)
    body: dict
    records: list
    links: dict = field(default_factory=dict)  # requests' parsed RFC 8288 Link header


@dataclass(frozen=True)
class Next:
    """Either parameters to merge into the last request's, or a URL to follow as it is."""

    params: dict | None = None
    url: str | None = None


class Paginator(Protocol):
    def first(self) -> dict: ...

    def next(self, page: Page) -> Next | None: ...


class CursorPaginator:
    """The body carries an opaque cursor for the next page; null or missing means the last page."""

    def __init__(self, cursor_path: str, cursor_param: str):
        self.cursor_path, self.cursor_param = cursor_path, cursor_param

    def first(self) -> dict:
        return {}

    def next(self, page: Page) -> Next | None:
        cursor = get_path(page.body, self.cursor_path)
        return Next(params={self.cursor_param: cursor}) if cursor else None


class NextUrlPaginator:
    """The body carries the URL of the next page (absolute or relative to the one just read)."""

    def __init__(self, next_url_path: str):
        self.next_url_path = next_url_path

    def first(self) -> dict:
        return {}

    def next(self, page: Page) -> Next | None:
        url = get_path(page.body, self.next_url_path)
        return Next(url=urljoin(page.url, url)) if isinstance(url, str) and url else None


class LinkHeaderPaginator:
    """RFC 8288: `Link: <https://…?page=3>; rel="next"` (GitHub style)."""

    def first(self) -> dict:
        return {}

    def next(self, page: Page) -> Next | None:
        url = (page.links.get("next") or {}).get("url")
        return Next(url=urljoin(page.url, url)) if url else None


class PageNumberPaginator:
    """page=1,2,3…; stops when the pages read cover `total_path` (if given) or on an empty page."""

    def __init__(self, page_param: str, page_size: int, size_param: str | None = None, start_page: int = 1,
                 total_path: str | None = None):
        self.page_param, self.page_size, self.size_param = page_param, page_size, size_param
        self.start_page, self.total_path = start_page, total_path

    def first(self) -> dict:
        params = {self.page_param: self.start_page}
        if self.size_param:
            params[self.size_param] = self.page_size
        return params

    def next(self, page: Page) -> Next | None:
        number = int(page.params[self.page_param])
        if _covered(page.body, self.total_path, (number - self.start_page + 1) * self.page_size):
            return None
        return Next(params={self.page_param: number + 1})


class OffsetPaginator:
    """offset=0,limit=N; offset=N…; stops when the records read cover `total_path` or on an empty page."""

    def __init__(self, offset_param: str, limit_param: str, limit: int, total_path: str | None = None):
        self.offset_param, self.limit_param, self.limit, self.total_path = offset_param, limit_param, limit, total_path

    def first(self) -> dict:
        return {self.offset_param: 0, self.limit_param: self.limit}

    def next(self, page: Page) -> Next | None:
        offset = int(page.params[self.offset_param]) + len(page.records)
        if _covered(page.body, self.total_path, offset):
            return None
        return Next(params={self.offset_param: offset})


def _covered(body: dict, total_path: str | None, read: int) -> bool:
    if total_path is None:
        return False
    total = get_path(body, total_path)
    try:
        return read >= int(total)
    except (TypeError, ValueError):
        return False  # no usable total: the empty page ends it


def paginator_for(spec: dict) -> Paginator:
    kind, args = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    classes = {"cursor": CursorPaginator, "next_url": NextUrlPaginator, "link_header": LinkHeaderPaginator,
               "page_number": PageNumberPaginator, "offset": OffsetPaginator}
    if kind not in classes:
        raise ValueError(f"unknown paginator type {kind!r}")  # the profile schema prevents this
    return classes[kind](**args)
