"""Test setup: real simulators on loopback, real SQLite / PostgreSQL / MariaDB hubs.

Airflow reads its configuration at import time, so its environment is set here, before any test
module can import it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.helpers import REPO, connect

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="hiresync-airflow-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
    "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(_AIRFLOW_HOME / "ol.ndjson"),
                                                   "append": True}),
    "HIRESYNC_RETRY_DELAY": "0.1",
    "GX_ANALYTICS_ENABLED": "False",
})

SERVER_URLS = {"postgresql": os.environ.get("HIRESYNC_TEST_PG_URL"), "mariadb": os.environ.get("HIRESYNC_TEST_MYSQL_URL")}


# -- hub databases ---------------------------------------------------------------------------------
def _fresh_server_database(base_url: str) -> tuple[str, callable]:
    """A database of its own for this test session, dropped at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"hiresync_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)

    def drop():
        from hiresync.hub.store import engine_for

        engine_for(url).dispose()
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()

    return url, drop


def _new_database(backend: str, folder) -> tuple[str, callable]:
    """(url, drop) of a new, empty database on `backend`; skips when that server is not configured."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'hub.db'}", (lambda: None)
    base = SERVER_URLS[backend]
    if not base:
        pytest.skip(f"{backend} is not configured here (set HIRESYNC_TEST_{'PG' if backend == 'postgresql' else 'MYSQL'}_URL)")
    return _fresh_server_database(base)


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "mariadb"])
def hub_database(request, tmp_path_factory):
    """A migrated, empty-schema hub database URL, once per backend per session."""
    from hiresync.hub.store import migrate

    url, drop = _new_database(request.param, tmp_path_factory.mktemp("hub"))
    migrate(url)
    yield url
    drop()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def blank_database(request, tmp_path):
    """A database of its own for one test, per backend, with no schema at all (migration tests)."""
    url, drop = _new_database(request.param, tmp_path)
    yield url
    drop()


@pytest.fixture
def hub_url(hub_database):
    """The session's hub database, emptied before each test."""
    from hiresync.hub.models import Base
    from hiresync.hub.store import engine_for

    with engine_for(hub_database).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    return hub_database


@pytest.fixture
def settings(hub_url, tmp_path, monkeypatch):
    """Settings for one test: its own var dir, EHR file and key; the repo's sources and profiles."""
    return settings_for(hub_url, tmp_path, monkeypatch)


def settings_for(hub_url: str, tmp_path, monkeypatch):
    """The `settings` fixture's work, for a test that brings a hub database of its own."""
    from hiresync.privacy.pii import Keyring
    from hiresync.config.settings import Settings

    var = tmp_path / "var"
    monkeypatch.setenv("HIRESYNC_HOME", str(REPO))
    monkeypatch.setenv("HIRESYNC_VAR", str(var))
    monkeypatch.setenv("HIRESYNC_HUB_URL", hub_url)
    monkeypatch.setenv("HIRESYNC_EHR_URL", f"sqlite:///{var / 'ehr.db'}")
    monkeypatch.delenv("HIRESYNC_KEYS", raising=False)
    s = Settings.from_env()
    Keyring.generate(s.key_file)
    return s


@pytest.fixture
def sqlite_settings(tmp_path, monkeypatch):
    """Like `settings` but always on a fresh embedded SQLite hub (for tests that are not about the DB)."""
    from hiresync.hub.store import migrate
    from hiresync.privacy.pii import Keyring
    from hiresync.config.settings import Settings

    var = tmp_path / "var"
    monkeypatch.setenv("HIRESYNC_HOME", str(REPO))
    monkeypatch.setenv("HIRESYNC_VAR", str(var))
    monkeypatch.delenv("HIRESYNC_HUB_URL", raising=False)
    monkeypatch.delenv("HIRESYNC_EHR_URL", raising=False)
    monkeypatch.delenv("HIRESYNC_KEYS", raising=False)
    s = Settings.from_env()
    Keyring.generate(s.key_file)
    migrate(s.hub_url)
    return s


# -- simulators ------------------------------------------------------------------------------------
@pytest.fixture
def aiview(monkeypatch):
    """A 300-result AIView simulator with defects and re-scores, wired to the aiview connection."""
    from simulators.aiview import AIViewSimulator

    with AIViewSimulator(count=300, seed=11, defect_rate=0.05, rescore_rate=0.05) as sim:
        connect(monkeypatch, sim)
        yield sim


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's own metadata DB (SQLite, a temp AIRFLOW_HOME), migrated once per session."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ)
    return _AIRFLOW_HOME


@pytest.fixture(autouse=True)
def _no_log_handler_on_a_closed_stream():
    """dag.test() points Airflow's log handlers at the stream of the moment; under capfd/CliRunner that
    stream is closed after the test, and every later log record then prints "--- Logging error ---"
    into the next test's captured output. Drop such handlers before and after each test."""
    def drop():
        loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                           if isinstance(lg, logging.Logger)]
        for logger in loggers:
            for handler in list(logger.handlers):
                if getattr(getattr(handler, "stream", None), "closed", False):
                    logger.removeHandler(handler)

    drop()
    yield
    drop()
