"""Files with personal data are readable by their owner only (issue 14, finding 10)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from sqlalchemy import select, text
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import InterviewResult
from hiresync.hub.store import engine_for, transaction
from hiresync.pipeline.runner import run_source


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_makes_var_and_the_sqlite_databases_private(sqlite_settings):
    var = sqlite_settings.var_dir
    os.chmod(var, 0o755)  # as an older install left it
    db = sqlite_settings.hub_url.split(":///", 1)[1]
    os.chmod(db, 0o644)
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert mode(var) == 0o700 and mode(db) == 0o600
    with engine_for(sqlite_settings.ehr_url).connect() as conn:
        conn.execute(text("select 1"))
    assert mode(sqlite_settings.ehr_url.split(":///", 1)[1]) == 0o600


def test_a_new_sqlite_database_in_a_new_folder_is_private(tmp_path):
    path = tmp_path / "new" / "deeper" / "x.db"
    with engine_for(f"sqlite:///{path}").connect() as conn:
        conn.execute(text("create table t (a int)"))
    assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700


def _person(settings, aiview) -> str:
    with transaction(settings.hub_url) as s:
        loaded = set(s.scalars(select(InterviewResult.vendor_result_id)))
    return next(r for r in aiview.records() if r["result_id"] in loaded)["candidate"]["id_card"]


def test_subject_export_never_writes_into_an_existing_file_or_through_a_symlink(sqlite_settings, aiview, tmp_path):
    run_source("aiview", sqlite_settings)
    nid = _person(sqlite_settings, aiview)
    existing = tmp_path / "existing.json"
    existing.write_text("old")
    os.chmod(existing, 0o644)
    target = tmp_path / "elsewhere.json"
    target.write_text("")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    for out in (existing, link):
        result = CliRunner().invoke(app, ["subject", "export", "--national-id", nid, "--out", str(out), "--operator", "x"])
        assert result.exit_code == 1 and "exists" in result.output and nid not in result.output
    assert existing.read_text() == "old" and target.read_text() == ""
    fresh = tmp_path / "fresh.json"
    result = CliRunner().invoke(app, ["subject", "export", "--national-id", nid, "--out", str(fresh), "--operator", "x"])
    assert result.exit_code == 0, result.output
    assert mode(fresh) == 0o600


def test_airflow_runs_with_a_private_umask(tmp_path):
    from hiresync.dev_airflow import airflow_process

    proc = airflow_process([sys.executable, "-c", "open('simple_auth_manager_passwords.json.generated', 'w').write('{}')"],
                           env=dict(os.environ), cwd=tmp_path)
    assert proc.wait(timeout=60) == 0
    assert mode(tmp_path / "simple_auth_manager_passwords.json.generated") == 0o600
