"""Helpers shared by the tests (conftest.py holds only fixtures: it must be imported once)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def digest(label: str) -> str:
    """A SHA-256 hex digest to stand for a payload hash, idempotency key or blind index in hand-made
    rows (the hub stores such columns as 32 bytes and refuses anything else)."""
    return hashlib.sha256(label.encode()).hexdigest()


def connect(monkeypatch, sim, conn_id: str = "hiresync_aiview", **override) -> None:
    doc = {"conn_type": "http", "host": sim.url, "login": sim.client_id, "password": sim.client_secret, **override}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(doc))


def personal_values(records: list[dict]) -> set[str]:
    values: set[str] = set()
    for rec in records:
        cand = rec.get("candidate", {})
        if cand.get("id_card"):
            values.add(str(cand["id_card"]).upper())
        if cand.get("mobile"):
            digits = re.sub(r"\D", "", str(cand["mobile"]))[-11:]
            values.update({str(cand["mobile"]), digits})
        if cand.get("email"):
            values.update({str(cand["email"]), str(cand["email"]).lower()})
        if cand.get("name") and len(cand["name"]) >= 2:
            values.add(cand["name"])
        video = rec.get("interview", {}).get("video", {}).get("url")
        if video:
            values.add(video)
    return values


def leaks(text: str, values: set[str]) -> list[str]:
    """Which personal values occur in `text` (reported masked, so a failing test leaks nothing)."""
    return [v[:2] + "***" for v in values if v in text]


def outbox_bodies(settings, rows) -> list[dict]:
    """What the relay sends for these outbox rows (rendered from their raw payloads, or decrypted)."""
    from hiresync.delivery.render import bodies
    from hiresync.hub.store import transaction
    from hiresync.privacy.pii import Keyring

    keys = Keyring.load(settings.key_file)
    with transaction(settings.hub_url) as s:
        out = bodies(s, keys, rows)
    return [out[r.id] for r in rows]


def hub_plaintext(hub_url: str) -> str:
    """Every value of every hub table as text (ciphertext stays ciphertext): for plaintext scans."""
    from sqlalchemy import select

    from hiresync.hub.models import Base
    from hiresync.hub.store import transaction

    parts = []
    with transaction(hub_url) as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)
