"""No secret, token or key reaches a log, an error, a status or a report (issue 14, finding 6)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from connectors.connection import ConnectionSettings
from connectors.rest.profile import RestProfile
from connectors.rest.source import RestSource
from hiresync.cli import app
from hiresync.config.connections import get_connection
from hiresync.config.settings import safe_url
from hiresync.errors import ConfigError, HireSyncError
from simulators.feed import PATH as FEED_PATH, FeedSimulator
from simulators.zhiping import LIST_PATH, ZhiPingSimulator
from tests.helpers import REPO
from tests.test_connector_profiles import feed_profile, read_all, write_profile, zhiping_profile

KEY = "feed-key-9f8e7d6c5b4a"


def test_retries_of_a_request_with_a_key_in_the_query_log_no_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FeedSimulator("api_key_query", "next_url", count=30, page_size=25, secret=KEY) as sim:
        sim.fail(FEED_PATH, 503, count=1, skip=1)  # the second page (its URL holds the key) is retried
        profile = RestProfile.load(write_profile(tmp_path, feed_profile(
            {"type": "api_key", "name": "api_key", "in": "query"}, {"type": "next_url", "next_url_path": "next"})))
        got = read_all(RestSource(profile, ConnectionSettings("test", sim.url, sim.client_id, KEY)))
    assert len(got) == 30
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "api_key" in logged or "Retry" in logged  # urllib3 did log its retries
    assert KEY not in logged


def test_signed_requests_log_neither_app_key_nor_sign(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with ZhiPingSimulator(count=30, seed=3) as sim:
        sim.fail(LIST_PATH, 503, count=2)
        profile = RestProfile.load(write_profile(tmp_path, zhiping_profile()))
        read_all(RestSource(profile, ConnectionSettings("test", sim.url, sim.client_id, sim.client_secret)))
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "sign=" in logged  # the request was logged, its values not
        assert sim.client_id not in logged and f"sign={sim.client_secret}" not in logged
    for line in logged.splitlines():
        if "sign=" in line:
            assert "sign=***" in line, line


@pytest.mark.parametrize("password", ["pa/ss#wo?rd", "x?y", "a#b", "s/l"])
def test_a_connection_uri_whose_password_holds_reserved_characters_is_read_or_refused_cleanly(monkeypatch, password):
    monkeypatch.setenv("AIRFLOW_CONN_HIRESYNC_T", f"http://user:{password}@vendor.example:8443/")
    try:
        conn = get_connection("hiresync_t")
    except HireSyncError as exc:
        assert password not in str(exc) and "hiresync_t" in str(exc) and "percent-encode" in str(exc)
    else:
        pytest.fail(f"read a broken URI as {conn.host!r}")


def test_a_percent_encoded_password_is_read(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HIRESYNC_T", "http://user:pa%2Fss%23wo%3Frd@vendor.example:8443/")
    conn = get_connection("hiresync_t")
    assert conn.password == "pa/ss#wo?rd" and conn.host == "http://vendor.example:8443"


def test_safe_url_hides_a_password_in_the_query():
    shown = safe_url("postgresql+psycopg://u@db/hub?password=s3cret&sslmode=require")
    assert "s3cret" not in shown and "sslmode=require" in shown
    shown = safe_url("mysql+pymysql://u:pw@db/hub?charset=utf8mb4&ssl_key=/k&passwd=s3cret")
    assert "s3cret" not in shown and "pw@" not in shown and "charset=utf8mb4" in shown


def test_status_json_shows_no_password_in_a_database_url(sqlite_settings, monkeypatch):
    monkeypatch.setenv("HIRESYNC_EHR_URL", f"{sqlite_settings.ehr_url}?password=s3cret-hub")
    result = CliRunner().invoke(app, ["status", "--json"])
    assert "s3cret-hub" not in result.output


def test_a_schema_error_does_not_quote_the_offending_value(tmp_path):
    doc = zhiping_profile()
    doc["auth"]["type"] = "hunter2-the-secret"
    path = write_profile(tmp_path, doc, "broken.yaml")
    with pytest.raises(ConfigError) as err:
        RestProfile.load(path)
    assert "hunter2-the-secret" not in str(err.value) and err.value.key == "auth.type"
    assert "is not one of" in str(err.value)
    doc = zhiping_profile()
    doc["limits"]["max_retries"] = "s3cr3t-value"
    path = write_profile(tmp_path, doc, "broken2.yaml")
    with pytest.raises(ConfigError) as err:
        RestProfile.load(path)
    assert "s3cr3t-value" not in str(err.value) and err.value.key == "limits.max_retries"
