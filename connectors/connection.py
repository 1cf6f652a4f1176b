"""Connection settings as a connector sees them: the shape of an Airflow Connection, no Airflow."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConnectionSettings:
    conn_id: str
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr, a log or an error
    extra: dict = field(default_factory=dict)
