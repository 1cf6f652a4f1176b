"""The one adapter between Airflow Connections and connector settings.

Airflow's own first lookup is the AIRFLOW_CONN_<ID> environment variable (JSON or URI); we read
it the same way so the CLI works without Airflow. Inside an Airflow task, anything else (the
metadata DB, a secrets backend) is asked through the Task SDK.
"""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlsplit

from connectors.connection import ConnectionSettings
from hiresync.errors import HireSyncError


def get_connection(conn_id: str) -> ConnectionSettings:
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw:
        return _parse(conn_id, raw)
    try:
        from airflow.sdk import BaseHook

        c = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - any failure means "not configured" to the user
        raise HireSyncError(
            f"connection {conn_id!r} is not configured: set AIRFLOW_CONN_{conn_id.upper()} "
            f"or add it in Airflow ({type(exc).__name__})") from None
    host = c.host or ""
    if host and c.port and "://" in host:
        host = f"{host}:{c.port}"
    return ConnectionSettings(conn_id, host or None, c.login, c.password, c.extra_dejson or {})


def _parse(conn_id: str, raw: str) -> ConnectionSettings:
    if raw.lstrip().startswith("{"):
        try:
            doc = json.loads(raw)
        except ValueError:
            raise HireSyncError(f"AIRFLOW_CONN_{conn_id.upper()} is not valid JSON") from None
        host = doc.get("host")
        if host and doc.get("port"):
            host = f"{host}:{doc['port']}"
        if host and "://" not in host:
            host = f"{doc.get('schema') or 'http'}://{host}"
        return ConnectionSettings(conn_id, host, doc.get("login"), doc.get("password"), doc.get("extra") or {})
    # A '/', '#' or '?' in the login or password ends the authority early: the rest of the password
    # would be read as a port ("Port could not be cast to integer value as '<password>'"), a path or a
    # fragment. Refuse it, naming the connection and the rule, never the value.
    refusal = HireSyncError(
        f"AIRFLOW_CONN_{conn_id.upper()} (connection {conn_id!r}) is not a valid connection URI: a '/', '#', '?' "
        "or '@' in the login or password must be percent-encoded (%2F, %23, %3F, %40), or use the JSON form")
    after_scheme = raw.split("://", 1)[1] if "://" in raw else raw
    at = after_scheme.rfind("@")
    if at >= 0 and any(c in after_scheme[:at] for c in "/?#"):
        raise refusal
    try:
        url = urlsplit(raw)
        port = url.port
    except ValueError:
        raise refusal from None
    scheme = "https" if url.scheme in ("https",) else "http"
    host = f"{scheme}://{url.hostname}" + (f":{port}" if port else "") if url.hostname else None
    return ConnectionSettings(conn_id, host, unquote(url.username or "") or None, unquote(url.password or "") or None)
