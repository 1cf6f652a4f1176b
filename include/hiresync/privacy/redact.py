"""Secrets out of logs: URLs are redacted before they are logged.

With `auth.type: api_key, in: query` the key is a query parameter, and signed vendors carry
`app_key` and `sign` there; urllib3 logs the full URL when it retries ("Retrying (...) after ...",
"Incremented Retry for (url=...)") and at DEBUG for every request, to stderr and to Airflow's task
logs. Like dlt's rest_client redaction, a filter on those loggers rewrites each record before any
handler sees it: every query parameter keeps its name and loses its value (a profile names the
key's parameter freely, so no list of "sensitive" names would be complete).
"""

from __future__ import annotations

import logging
import re

# name=value after ? or & (a URL's query, or urlencoded text); the value runs to the next separator.
_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&\s'\"#?]+)=([^&\s'\"#)]*)")
# user:password@ in a URL
_USERINFO = re.compile(r"(?<=://)([^/\s:@'\"]*):([^\s@'\"]*)@")

LOGGERS = ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager", "urllib3.connection",
           "requests", "requests_oauthlib", "oauthlib")


def redact_url_text(text: str) -> str:
    """`text` with every query value and URL password replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:***@", text)
    return _QUERY_VALUE.sub(lambda m: f"{m.group(1)}=***", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with its URLs redacted (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: leave it to logging's own handling
            return True
        redacted = redact_url_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Attach the filter to the HTTP libraries' loggers (idempotent). A filter on a logger applies
    to the records that logger creates, so each module's logger gets it, not only the parent."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
