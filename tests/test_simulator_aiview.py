"""The AIView vendor simulator: OAuth2 client credentials, cursor paging, defects, re-scores."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from simulators.aiview import DEFECT_KINDS, AIViewSimulator, _dumps, vendor_json, vendor_record
from simulators.dataset import InterviewDataset

RESULTS = "/v1/interview-results"
TIMEOUT = (2, 10)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def checksum_ok(id_card: str) -> bool:
    # Independent of simulators.dataset on purpose: the test must not share the code it checks.
    if not re.fullmatch(r"\d{17}[\dX]", id_card):
        return False
    return "10X98765432"[sum(int(d) * w for d, w in zip(id_card, WEIGHTS)) % 11] == id_card[17]


def token(sim: AIViewSimulator, session: requests.Session | None = None) -> str:
    http = session or requests
    r = http.post(sim.url + "/oauth/token", timeout=TIMEOUT,
                  data={"grant_type": "client_credentials", "client_id": sim.client_id,
                        "client_secret": sim.client_secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def pull(sim: AIViewSimulator, limit: int = 97, **params: str) -> list[list[dict]]:
    """Every page, following next_cursor until it is null."""
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + token(sim, s)
    pages, cursor = [], None
    while True:
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        r = s.get(sim.url + RESULTS, params=query, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"data", "next_cursor"}
        pages.append(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 10_000, "paging does not terminate"


def flat(pages: list[list[dict]]) -> list[dict]:
    return [rec for page in pages for rec in page]


def key(rec: dict) -> tuple[str, str]:
    return rec["updated_at"], rec["result_id"]


@pytest.fixture(scope="module")
def sim():
    with AIViewSimulator(count=2000, seed=7) as s:
        yield s


@pytest.fixture(scope="module")
def feed(sim) -> list[dict]:
    return flat(pull(sim, limit=97))


# -- OAuth2 ---------------------------------------------------------------------------------
def test_token_flow_form_and_basic(sim):
    r = requests.post(sim.url + "/oauth/token", timeout=TIMEOUT,
                      data={"grant_type": "client_credentials", "client_id": "hiresync",
                            "client_secret": "aiview-secret"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]
    basic = requests.post(sim.url + "/oauth/token", data={"grant_type": "client_credentials"},
                          auth=("hiresync", "aiview-secret"), timeout=TIMEOUT)
    assert basic.status_code == 200 and basic.json()["access_token"] != body["access_token"]
    ok = requests.get(sim.url + RESULTS, params={"limit": "1"}, timeout=TIMEOUT,
                      headers={"Authorization": f"Bearer {basic.json()['access_token']}"})
    assert ok.status_code == 200 and len(ok.json()["data"]) == 1


@pytest.mark.parametrize("data,auth", [
    ({"grant_type": "client_credentials", "client_id": "hiresync", "client_secret": "wrong"}, None),
    ({"grant_type": "client_credentials", "client_id": "other",
      "client_secret": "aiview-secret"}, None),
    ({"grant_type": "client_credentials"}, None),
    ({"grant_type": "client_credentials"}, ("hiresync", "wrong")),
])
def test_wrong_client_credentials_are_401(sim, data, auth):
    r = requests.post(sim.url + "/oauth/token", data=data, auth=auth, timeout=TIMEOUT)
    assert r.status_code == 401 and r.json() == {"error": "invalid_client"}


def test_wrong_grant_type_is_400(sim):
    r = requests.post(sim.url + "/oauth/token", auth=("hiresync", "aiview-secret"),
                      data={"grant_type": "password"}, timeout=TIMEOUT)
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic aGlyZXN5bmM6eA=="])
def test_missing_or_unknown_token_is_401(sim, header):
    headers = {"Authorization": header} if header else {}
    r = requests.get(sim.url + RESULTS, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 401 and r.json() == {"error": "invalid_token"}


def test_expired_and_revoked_tokens_are_401():
    with AIViewSimulator(count=10, token_ttl=0) as expiring:
        t = token(expiring)
        r = requests.get(expiring.url + RESULTS, timeout=TIMEOUT,
                         headers={"Authorization": f"Bearer {t}"})
        assert r.status_code == 401 and r.json() == {"error": "invalid_token"}
    with AIViewSimulator(count=10) as revoking:
        headers = {"Authorization": f"Bearer {token(revoking)}"}
        assert requests.get(revoking.url + RESULTS, headers=headers, timeout=TIMEOUT).ok
        revoking.revoke_tokens()
        assert requests.get(revoking.url + RESULTS, headers=headers,
                            timeout=TIMEOUT).status_code == 401


# -- paging ---------------------------------------------------------------------------------
def test_full_pull_returns_every_version_once_in_order(sim, feed):
    assert len(feed) == 2000 + len(sim.rescored) == len(sim)
    keys = [key(r) for r in feed]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    per_id = Counter(r["result_id"] for r in feed)
    assert len(per_id) == 2000
    assert {rid for rid, n in per_id.items() if n == 2} == sim.rescored
    assert set(per_id.values()) == {1, 2}
    assert feed == sim.records()


def test_rescored_versions_come_later_with_a_changed_consistent_score(sim, feed):
    first_max = max(r["updated_at"] for r in feed if r["result_id"] not in sim.rescored)
    versions: dict[str, list[dict]] = {}
    for r in feed:
        versions.setdefault(r["result_id"], []).append(r)
    for rid in sim.rescored:
        old, new = versions[rid]
        assert old["updated_at"] <= first_max < new["updated_at"]
        assert new["evaluation"]["total_score"] != old["evaluation"]["total_score"]
        assert new["candidate"] == old["candidate"] and new["job"] == old["job"]
        assert_verdict_consistent(new)


def test_updated_since_filters_inclusively(sim, feed):
    pivot = feed[len(feed) // 2]["updated_at"]
    expected = [r for r in feed if r["updated_at"] >= pivot]
    # Same instant written with a +08:00 offset: the filter compares instants, not strings.
    local = datetime.fromisoformat(pivot.replace("Z", "+00:00")).astimezone(
        timezone(timedelta(hours=8))).isoformat()
    assert flat(pull(sim, limit=97, updated_since=local)) == expected
    later = datetime.fromisoformat(pivot.replace("Z", "+00:00")) + timedelta(microseconds=1)
    assert flat(pull(sim, limit=500, updated_since=later.isoformat())) == [
        r for r in feed if r["updated_at"] > pivot]
    assert flat(pull(sim, updated_since="2030-01-01T00:00:00Z")) == []


def test_ties_of_updated_at_straddling_page_boundaries_are_not_lost():
    with AIViewSimulator(count=300, seed=3, defect_rate=0, rescore_rate=0,
                         distinct_updated_at=7) as tied:
        pages = pull(tied, limit=10)
        records = flat(pages)
        assert len(records) == 300 and len({r["result_id"] for r in records}) == 300
        assert [key(r) for r in records] == sorted(key(r) for r in records)
        assert len({r["updated_at"] for r in records}) == 7
        straddles = sum(a[-1]["updated_at"] == b[0]["updated_at"] for a, b in zip(pages, pages[1:]))
        assert straddles >= 20  # the boundary really cuts through ties


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"limit": "-5"},
    {"updated_since": "2026-11-01T00:00:00"},  # no offset
    {"updated_since": "yesterday"},
    {"updated_since": "2026-11-01T00:00:00 08:00"},  # an unencoded '+' arrives as a space
    {"cursor": "not base64!"}, {"cursor": base64.urlsafe_b64encode(b"v9|1|x").decode()},
])
def test_bad_parameters_are_400(sim, params):
    r = requests.get(sim.url + RESULTS, params=params, timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {token(sim)}"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request" and r.json()["message"]


def test_default_limit_is_100(sim):
    r = requests.get(sim.url + RESULTS, timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {token(sim)}"})
    assert len(r.json()["data"]) == 100 and r.json()["next_cursor"]


# -- data quality ---------------------------------------------------------------------------
def assert_verdict_consistent(rec: dict) -> None:
    ev = rec["evaluation"]
    score = ev["total_score"]
    expected = ("recommend", "pass") if score >= 70 else \
        ("hold", "pending") if score >= 60 else ("reject", "fail")
    assert (ev["recommendation"], ev["result"]) == expected, rec["result_id"]


def test_ids_pass_the_checksum_except_bad_id_checksum_defects(sim, feed):
    for rec in feed:
        bad = sim.defects.get(rec["result_id"]) == "bad_id_checksum"
        assert checksum_ok(rec["candidate"]["id_card"]) is not bad, rec["result_id"]


def test_defects_match_the_declared_share_and_are_visible(sim, feed):
    assert len(sim.defects) == round(0.03 * 2000)
    assert Counter(sim.defects.values()) == {kind: 15 for kind in DEFECT_KINDS}
    assert not sim.defects.keys() & sim.rescored
    problems = {}
    for rec in feed:
        found = set()
        if not checksum_ok(rec["candidate"]["id_card"]):
            found.add("bad_id_checksum")
        if "name" not in rec["candidate"] or "code" not in rec["job"]:
            found.add("missing_required")
        if not 0 <= rec["evaluation"]["total_score"] <= rec["evaluation"]["full_score"]:
            found.add("score_out_of_range")
        try:
            datetime.fromisoformat(rec["interview"]["finished_at"])
        except ValueError:
            found.add("malformed_time")
        if found:
            problems[rec["result_id"]] = found
    assert problems == {rid: {kind} for rid, kind in sim.defects.items()}


def test_clean_records_are_realistic_and_consistent(sim, feed):
    clean = [r for r in feed if r["result_id"] not in sim.defects]
    for rec in clean:
        c, iv, ev = rec["candidate"], rec["interview"], rec["evaluation"]
        assert re.fullmatch(r"AV-\d{8}", rec["result_id"]) and re.fullmatch(r"AVC-\d{6}", c["id"])
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", c["name"])
        assert re.fullmatch(r"1[3-9]\d{9}", re.sub(r"^\+86|[\s-]", "", c["mobile"]))
        assert re.fullmatch(r"[A-Za-z0-9.]+@(qq\.com|163\.com|example\.com)", c["email"])
        started = datetime.fromisoformat(iv["started_at"])
        finished = datetime.fromisoformat(iv["finished_at"])
        updated = datetime.fromisoformat(rec["updated_at"].replace("Z", "+00:00"))
        assert started.utcoffset() == timedelta(hours=8)
        assert (started.year, started.month) == (2026, 11)
        assert timedelta(minutes=15) <= finished - started <= timedelta(minutes=45)
        assert finished < updated
        assert datetime.fromisoformat(iv["video"]["expires_at"]) == finished + timedelta(days=30)
        assert iv["video"]["url"].startswith("https://video.aiview.example/v/")
        assert iv["report_url"] == f"https://report.aiview.example/r/{rec['result_id']}"
        birth = date(int(c["id_card"][6:10]), int(c["id_card"][10:12]), int(c["id_card"][12:14]))
        age = started.year - birth.year - ((started.month, started.day) < (birth.month, birth.day))
        assert 20 <= age <= 45
        assert 4 <= len(ev["dimensions"]) <= 6 and 0 <= ev["total_score"] <= 100
        assert all(0 <= d["score"] <= 100 and d["comment"] for d in ev["dimensions"])
        assert rec["status"] == "completed" and ev["comment"]
        assert_verdict_consistent(rec)
    # Every format of mobile number and all three verdicts occur.
    mobiles = [r["candidate"]["mobile"] for r in clean]
    assert any(m.startswith("+86 ") for m in mobiles) and any("-" in m for m in mobiles)
    assert any(re.fullmatch(r"\d{11}", m) for m in mobiles)
    assert {r["evaluation"]["result"] for r in clean} == {"pass", "pending", "fail"}
    assert any(r["candidate"]["email"] != r["candidate"]["email"].lower() for r in clean)


def test_some_candidates_take_a_second_interview_for_another_position(sim, feed):
    jobs: dict[str, set[str]] = {}
    for rec in feed:
        if "code" in rec["job"]:
            jobs.setdefault(rec["candidate"]["id"], set()).add(rec["job"]["code"])
    retakes = [cid for cid, codes in jobs.items() if len(codes) == 2]
    assert 0.02 * len(jobs) < len(retakes) < 0.08 * len(jobs)


def test_determinism_same_seed_same_data():
    import random
    a = AIViewSimulator(count=300, seed=11)
    random.seed(0)  # the global random state must not matter
    random.random()
    b = AIViewSimulator(count=300, seed=11)
    assert a.records() == b.records() and a.defects == b.defects and a.rescored == b.rescored
    assert AIViewSimulator(count=300, seed=12).records() != a.records()
    with a, b:
        assert pull(a, limit=50) == pull(b, limit=50)


def test_fast_serialiser_matches_json_dumps():
    for res in InterviewDataset(5, result_prefix="AV-", candidate_prefix="AVC-").results(500):
        assert vendor_json(res) == _dumps(vendor_record(res))


# -- change feed ----------------------------------------------------------------------------
def test_rescore_makes_exactly_those_appear_after_the_previous_maximum():
    with AIViewSimulator(count=500, seed=9) as s:
        before = flat(pull(s, limit=200))
        previous_max = max(r["updated_at"] for r in before)
        old = {r["result_id"]: r for r in before}  # newest version wins
        ids = s.rescore(5)
        assert len(ids) == 5 and not set(ids) & s.defects.keys() and set(ids) <= s.rescored
        after = flat(pull(s, limit=200, updated_since=previous_max))
        newer = [r for r in after if r["updated_at"] > previous_max]
        assert sorted(r["result_id"] for r in newer) == sorted(ids)
        assert all(r["updated_at"] == previous_max for r in after if r not in newer)
        for rec in newer:
            previous = old[rec["result_id"]]["evaluation"]["total_score"]
            assert rec["evaluation"]["total_score"] != previous
            assert_verdict_consistent(rec)
        # Stamped with the wall clock (never earlier than the feed's previous maximum).
        stamp = datetime.fromisoformat(newer[0]["updated_at"].replace("Z", "+00:00"))
        assert stamp >= datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)
        assert len(flat(pull(s, limit=500))) == len(before) + 5
        assert set(s.rescore(3)).isdisjoint(ids)


def test_rescore_is_deterministic():
    first, second = AIViewSimulator(count=200, seed=4), AIViewSimulator(count=200, seed=4)
    assert first.rescore(4) == second.rescore(4)


# -- faults and server ----------------------------------------------------------------------
def test_outage_answers_503_everywhere_and_counts_requests():
    with AIViewSimulator(count=20) as s:
        t = token(s)
        s.outage = True
        assert requests.post(s.url + "/oauth/token", timeout=TIMEOUT).status_code == 503
        r = requests.get(s.url + RESULTS, headers={"Authorization": f"Bearer {t}"}, timeout=TIMEOUT)
        assert r.status_code == 503 and r.json()["error"] == "service_unavailable"
        assert "Retry-After" not in r.headers
        s.retry_after = 2
        assert requests.get(s.url + RESULTS, timeout=TIMEOUT).headers["Retry-After"] == "2"
        s.outage = False
        assert requests.get(s.url + RESULTS, headers={"Authorization": f"Bearer {t}"},
                            timeout=TIMEOUT).status_code == 200
        assert s.requests == Counter({"/oauth/token": 2, RESULTS: 3})


def test_latency_knob_delays_answers():
    with AIViewSimulator(count=5) as s:
        s.latency = 0.02
        started = time.perf_counter()
        requests.get(s.url + RESULTS, timeout=TIMEOUT)
        assert time.perf_counter() - started >= 0.02


def test_unknown_path_is_404_and_keep_alive_is_fast(sim):
    with requests.Session() as s:
        assert s.get(sim.url + "/nope", timeout=TIMEOUT).status_code == 404
        started = time.perf_counter()
        for _ in range(100):
            s.get(sim.url + "/nope", timeout=TIMEOUT)
        # Without TCP_NODELAY each response waits ~40 ms for a delayed ACK: 100 would take 4 s.
        assert time.perf_counter() - started < 2.0


def test_stop_releases_the_port():
    s = AIViewSimulator(count=5)
    url = s.start()
    s.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + RESULTS, timeout=TIMEOUT)


def test_command_line_prints_url_and_client_id_but_not_the_secret():
    include = Path(__file__).resolve().parents[1] / "include"
    proc = subprocess.Popen([sys.executable, "-m", "simulators.aiview", "--port", "0",
                             "--count", "20"], stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(include), "PATH": ""})
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert "hiresync" in line and "aiview-secret" not in line
        assert requests.post(url + "/oauth/token", data={"grant_type": "client_credentials"},
                             auth=("hiresync", "aiview-secret"), timeout=TIMEOUT).ok
    finally:
        proc.terminate()
        proc.wait(timeout=5)
