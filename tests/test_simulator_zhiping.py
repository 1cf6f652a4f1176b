"""The ZhiPing simulator's contract, checked with plain requests (no connector code): signatures,
envelope, page numbers over a time-sorted list, Beijing local times, 0-5 scores, integer codes."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from simulators.zhiping import LIST_PATH, ZhiPingSimulator

TIMEOUT = (2, 10)


def signed(sim: ZhiPingSimulator, secret: str | None = None, method: str = "hmac_sha256", **params) -> dict:
    # Written out here on purpose: the test must not share the code it checks.
    params = {"app_key": sim.app_key, "timestamp": str(int(time.time())), "nonce": uuid.uuid4().hex,
              **{k: str(v) for k, v in params.items()}}
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] != "")
    key = secret or sim.app_secret
    if method == "md5":
        params["sign"] = hashlib.md5(f"{text}&key={key}".encode()).hexdigest().upper()
    else:
        params["sign"] = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest().upper()
    return params


def get(sim, params) -> dict:
    r = requests.get(sim.url + LIST_PATH, params=params, timeout=TIMEOUT)
    assert r.status_code == 200
    return r.json()


@pytest.fixture(scope="module")
def sim():
    with ZhiPingSimulator(count=120, seed=31, defect_rate=0.05) as s:
        yield s


def test_pages_cover_the_list_once_in_update_time_order_with_a_total(sim):
    seen = []
    for page_no in (1, 2, 3):
        body = get(sim, signed(sim, start_time="2026-01-01 00:00:00", page_no=page_no, page_size=50))
        assert body["code"] == 0 and body["msg"] == "success" and body["data"]["total"] == 120
        seen += body["data"]["list"]
    assert len(seen) == 120 and len({r["interview_id"] for r in seen}) == 120
    keys = [(r["update_time"], r["interview_id"]) for r in seen]
    assert keys == sorted(keys)
    empty = get(sim, signed(sim, start_time="2026-01-01 00:00:00", page_no=4, page_size=50))
    assert empty["data"]["list"] == [] and empty["data"]["total"] == 120


def test_records_use_beijing_local_times_0_to_5_scores_and_integer_codes(sim):
    rows = sim.records()
    for r in rows:
        for field in ("begin_time", "end_time", "update_time", "video_expire_time"):
            assert re.fullmatch(r"2026-1[12]-\d\d \d\d:\d\d:\d\d", r[field]), field
        assert 0 <= r["score"] <= 5 and all(0 <= d["score"] <= 5 for d in r["dimensions"])
        assert isinstance(r["suggest"], int)
    assert {r["status"] for r in rows if r["interview_id"] not in sim.defects} <= {1, 2, 3}
    # Interviews are taken 08:00-21:00 Beijing time: the local hour says the times are not UTC.
    assert all(8 <= int(r["begin_time"][11:13]) <= 21 for r in rows)


def test_start_time_is_inclusive_and_read_as_beijing_time(sim):
    rows = sim.records()
    cut = rows[60]["update_time"]
    body = get(sim, signed(sim, start_time=cut, page_no=1, page_size=100))
    assert body["data"]["list"][0]["update_time"] == cut
    assert body["data"]["total"] == sum(1 for r in rows if r["update_time"] >= cut)


def test_bad_signature_stale_timestamp_replayed_nonce_and_bad_parameters_are_envelope_errors(sim):
    assert get(sim, signed(sim, secret="wrong", start_time="2026-01-01 00:00:00"))["code"] == 40001
    old = signed(sim, start_time="2026-01-01 00:00:00", timestamp=int(time.time()) - 600)
    assert get(sim, old)["code"] == 40002
    params = signed(sim, start_time="2026-01-01 00:00:00")
    assert get(sim, params)["code"] == 0
    assert get(sim, params)["code"] == 40003  # the same nonce again
    assert get(sim, signed(sim, start_time="2026/01/01"))["code"] == 40004
    assert get(sim, signed(sim, page_size=101))["code"] == 40004
    unknown = signed(sim)
    unknown["app_key"] = "someone-else"
    assert get(sim, unknown)["code"] == 40005


def test_md5_signing_and_the_busy_knob():
    with ZhiPingSimulator(count=10, seed=31, sign_method="md5") as s:
        assert get(s, signed(s, method="md5"))["code"] == 0
        assert get(s, signed(s))["code"] == 40001  # an HMAC signature is not what this one expects
        s.busy = 1
        assert get(s, signed(s, method="md5"))["code"] == 42900
        assert get(s, signed(s, method="md5"))["code"] == 0


def test_rescore_moves_rows_to_the_end_with_a_new_update_time(sim):
    before = sim.records()
    moved = sim.rescore(n=2)
    after = sim.records()
    assert [r["interview_id"] for r in after[-2:]] == sorted(moved)
    for rid in moved:
        old = next(r for r in before if r["interview_id"] == rid)
        new = next(r for r in after if r["interview_id"] == rid)
        assert new["update_time"] > old["update_time"] and new["score"] != old["score"]
    assert len(after) == len(before)


def test_faults_429_with_retry_after_and_truncated_bodies():
    with ZhiPingSimulator(count=10, seed=31) as s:
        s.fail(LIST_PATH, 429, retry_after=3)
        r = requests.get(s.url + LIST_PATH, params=signed(s), timeout=TIMEOUT)
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        s.truncate(LIST_PATH)
        r = requests.get(s.url + LIST_PATH, params=signed(s), timeout=TIMEOUT)
        with pytest.raises(ValueError):
            r.json()
        assert get(s, signed(s))["code"] == 0 and s.faults_pending == 0


def test_ties_knob_piles_update_times_onto_a_few_instants():
    with ZhiPingSimulator(count=50, seed=31, distinct_update_times=2) as s:
        assert len({r["update_time"] for r in s.records()}) == 2
        assert datetime.strptime(s.records()[0]["update_time"], "%Y-%m-%d %H:%M:%S") == \
            (datetime(2026, 12, 1, tzinfo=timezone.utc) + timedelta(hours=8)).replace(tzinfo=None)
