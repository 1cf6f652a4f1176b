"""The HR report as an Airflow UI page: the plugin's app in a real `airflow api-server`, behind
Airflow's own login (a plugin endpoint is not protected by default: the plugin checks the user),
with the role matrix of policy.yaml; and the page in a real browser with the UI's cookie."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import REPO
from tests.test_report import NAMES, seed
from tests.test_report_browser import CHROMIUM, SHOTS, rendered

USERS = ("hr_admin", "sales_lead", "it_ops", "mallory")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_server(airflow_db, sqlite_settings, tmp_path):
    seed(sqlite_settings)
    port = _free_port()
    passwords = tmp_path / "passwords.json"
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:viewer" for u in USERS),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-for-the-plugin-test",
           "AIRFLOW__API__SECRET_KEY": "test-secret-key"}
    log = open(tmp_path / "api-server.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "api-server", "--port", str(port),
                             "--workers", "1", "--apps", "core"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                if requests.get(f"{base}/api/v2/version", timeout=2).status_code in (200, 401, 403):
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        else:
            pytest.fail("api-server did not start: " + (tmp_path / "api-server.log").read_text()[-2000:])
        assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-2000:]
        yield base, json.loads(passwords.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def token(base: str, passwords: dict, user: str) -> str:
    r = requests.post(f"{base}/auth/token", json={"username": user, "password": passwords[user]}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


def test_the_plugin_page_checks_the_user_and_the_role_matrix(api_server):
    base, passwords = api_server
    page = f"{base}/hr-report/"
    assert requests.get(page, timeout=30).status_code == 401  # no login, no report
    assert requests.get(page, headers={"Authorization": "Bearer forged"}, timeout=30).status_code in (401, 403)

    def get(user: str, **params):
        return requests.get(page, params=params, timeout=60, headers={"Authorization": f"Bearer {token(base, passwords, user)}"})

    hr = get("hr_admin")
    assert hr.status_code == 200 and 'data-chart="funnel"' in hr.text and "张伟强" in hr.text
    assert hr.headers["Cache-Control"] == "no-store"
    sales = get("sales_lead")
    assert sales.status_code == 200 and "P-SA-001" in sales.text and "P-RD-001" not in sales.text
    assert not any(name in sales.text for name in NAMES.values())
    assert get("sales_lead", department="研发中心").status_code == 403
    it = get("it_ops")
    assert re.findall(r'data-section="([^"]+)"', it.text) == ["health"]
    assert get("it_ops", department="销售部").status_code == 403
    assert get("mallory").status_code == 403  # logged in to Airflow, but not in the role matrix
    # the navigation entry is registered with Airflow
    plugins = requests.get(f"{base}/api/v2/plugins", timeout=30,
                           headers={"Authorization": f"Bearer {token(base, passwords, 'hr_admin')}"})
    assert plugins.status_code == 200, plugins.text
    views = [v for p in plugins.json()["plugins"] for v in p.get("external_views", [])]
    assert any(v["name"] == "HR 报表" and v["href"] == "/hr-report/" for v in views), views


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_plugin_page_in_a_browser_with_the_ui_cookie(api_server):
    from playwright.sync_api import sync_playwright

    base, passwords = api_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        ctx = browser.new_context(viewport={"width": 1000, "height": 900})
        ctx.add_cookies([{"name": "_token", "value": token(base, passwords, "sales_lead"), "url": base}])
        page = ctx.new_page()
        response = page.goto(f"{base}/hr-report/")
        assert response.status == 200
        charts = rendered(page)
        assert charts and all(c["w"] > 100 and c["marks"] for c in charts.values())
        assert {lab for lab, _, _ in charts["by_position"]["marks"]} == {"P-SA-001 销售代表"}
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "plugin-sales.png"), full_page=True)
        assert page.goto(f"{base}/hr-report/?department=研发中心").status == 403
        browser.close()
