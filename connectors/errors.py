"""Typed connector errors. Messages name the source, the request and the cause, never a secret
or a response body (bodies can hold personal data)."""

from __future__ import annotations


class SourceError(Exception):
    def __init__(self, source: str, request: str, cause: str):
        self.source, self.request, self.cause = source, request, cause
        super().__init__(f"source {source!r}: {request}: {cause}")


class SourceAuthError(SourceError):
    """Credentials refused (401/403) or the token endpoint failed."""


class SourceUnavailable(SourceError):
    """Could not connect, timed out, or 5xx/429 after the retry budget."""


class SourceResponseError(SourceError):
    """A response the connector does not understand, or a 4xx that retrying cannot fix."""
