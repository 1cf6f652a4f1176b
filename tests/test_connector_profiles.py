"""The profile language: schema errors that name file, key and problem; every auth and paginator
style over real HTTP (simulators), envelopes, cursor formats, the rate limiter."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from connectors.connection import ConnectionSettings
from connectors.errors import SourceAuthError, SourceResponseError
from connectors.rest.envelope import safe_message
from connectors.rest.incremental import CursorFormat
from connectors.rest.limits import RateLimiter
from connectors.rest.profile import RestProfile
from connectors.rest.source import RestSource
from hiresync.errors import ConfigError
from simulators.feed import PATH as FEED_PATH
from simulators.feed import FeedSimulator
from simulators.zhiping import LIST_PATH, ZhiPingSimulator
from tests.helpers import REPO

START = "2026-01-01T00:00:00+00:00"


def write_profile(tmp_path: Path, doc: dict, name: str = "vendor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def feed_profile(auth: dict, paginator: dict, **incremental) -> dict:
    return {
        "source": "feed", "kind": "rest", "connection": "hiresync_feed", "auth": auth,
        "stream": {"path": FEED_PATH, "record_selector": "items", "paginator": paginator,
                   "incremental": {"cursor_field": "modified_ms", "param": "since", "format": "epoch_ms",
                                   "start": START, **incremental}},
        "limits": {"max_retries": 1, "backoff_factor": 0.001},
    }


def conn_for(sim) -> ConnectionSettings:
    return ConnectionSettings("test", sim.url, sim.client_id, sim.client_secret)


def read_all(source: RestSource, since: datetime | None = None) -> list[dict]:
    return [r for page in source.pages(since or source.profile.start) for r in page]


def zhiping_profile(**changes) -> dict:
    doc = yaml.safe_load((REPO / "connectors/profiles/zhiping.yaml").read_text(encoding="utf-8"))
    doc["limits"] = {"max_retries": 2, "backoff_factor": 0.001}
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return doc


# -- schema ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, key, problem", [
    (lambda d: d["auth"].update(type="apikey"), "auth.type", "the value is not one of api_key, "),
    (lambda d: d.update(auth={"type": "api_key", "in": "query"}), "auth", "'name' is a required property"),
    (lambda d: d["auth"].update(algo="md5"), "auth", "unknown key ('algo' was unexpected)"),
    (lambda d: d["stream"]["paginator"].pop("page_size"), "stream.paginator", "'page_size' is a required property"),
    (lambda d: d["stream"]["paginator"].update(page_size=0), "stream.paginator.page_size", "less than the minimum of 1"),
    (lambda d: d["stream"]["incremental"].update(format="yyyy-MM-dd"), "stream.incremental.format", "strftime"),
    (lambda d: d["stream"]["incremental"].update(timezone="Beijing"), "stream.incremental.timezone", "IANA timezone"),
    (lambda d: d["stream"]["incremental"].pop("tie_breaker"), "stream.incremental", "'tie_breaker' is a dependency of 'seek'"),
    (lambda d: d["stream"].update(paginator={"type": "link_header"}), "stream.incremental.seek", "only works with"),
    (lambda d: d["stream"]["envelope"].pop("code_path"), "stream.envelope", "'code_path' is a required property"),
    (lambda d: d["limits"].update(requests_per_minute=0), "limits.requests_per_minute", "less than or equal to"),
])
def test_a_broken_profile_names_the_file_the_key_and_the_problem(tmp_path, change, key, problem):
    doc = zhiping_profile()
    change(doc)
    path = write_profile(tmp_path, doc, "broken.yaml")
    with pytest.raises(ConfigError) as err:
        RestProfile.load(path)
    assert err.value.file == str(path) and err.value.key == key
    assert problem in err.value.problem, err.value.problem


def test_the_shipped_profiles_load():
    from connectors.kinds import load_profile  # rest, webhook and file_drop profiles live side by side

    for path in (REPO / "connectors/profiles").glob("*.yaml"):
        profile = load_profile(path)
        assert profile.source == path.stem


# -- auth and pagination styles over HTTP ------------------------------------------------------------
STYLES = [
    ({"type": "api_key", "name": "X-Api-Key"}, "api_key_header", {"type": "link_header"}, "link"),
    ({"type": "api_key", "name": "api_key", "in": "query"}, "api_key_query", {"type": "next_url", "next_url_path": "next"}, "next_url"),
    ({"type": "basic"}, "basic", {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 20,
                                  "total_path": "total"}, "offset"),
    ({"type": "bearer"}, "bearer", {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 20}, "offset"),
]


@pytest.mark.parametrize("auth, sim_auth, paginator, paging", STYLES, ids=[s[1] + "+" + s[3] for s in STYLES])
def test_each_auth_and_paginator_style_reads_every_record_once(tmp_path, auth, sim_auth, paginator, paging):
    with FeedSimulator(sim_auth, paging, count=60, page_size=25) as sim:
        source = RestSource(RestProfile.load(write_profile(tmp_path, feed_profile(auth, paginator))), conn_for(sim))
        got = read_all(source)
        assert [r["result_id"] for r in got] == [r["result_id"] for r in sim.rows]
        # No total: the offset paginator stops on the first empty page, one request more.
        pages = -(-60 // (20 if paging == "offset" else 25))
        assert sim.requests[FEED_PATH] == pages + (1 if paging == "offset" and "total_path" not in paginator else 0)

        # epoch_ms cursor: since the 31st record's instant returns it and everything after.
        cut = sim.rows[30]
        since = datetime.fromtimestamp(cut["modified_ms"] / 1000, timezone.utc)
        assert source.cursor_of(cut) == since
        assert [r["result_id"] for r in read_all(source, since)][0] == cut["result_id"]

        wrong = ConnectionSettings("test", sim.url, sim.client_id, "not-the-key")
        with pytest.raises(SourceAuthError) as err:
            read_all(RestSource(source.profile, wrong))
        assert "not-the-key" not in str(err.value) and "401" in str(err.value)


@pytest.mark.parametrize("algorithm", ["hmac_sha256", "md5"])
def test_signed_requests_with_page_numbers_read_every_interview(tmp_path, algorithm):
    with ZhiPingSimulator(count=230, seed=2, sign_method=algorithm) as sim:
        profile = RestProfile.load(write_profile(tmp_path, zhiping_profile(**{"auth.algorithm": algorithm})))
        got = read_all(RestSource(profile, conn_for(sim)))
        assert sorted(r["interview_id"] for r in got) == sorted(r["interview_id"] for r in sim.records())
        assert len(got) == 230

        with pytest.raises(SourceAuthError) as err:
            read_all(RestSource(profile, ConnectionSettings("t", sim.url, sim.app_key, "zhiping-wrong")))
        assert "vendor code 40001" in str(err.value) and "签名错误" in str(err.value)
        assert "zhiping-wrong" not in str(err.value) and "sign=" not in str(err.value)


def test_page_numbers_without_seek_stop_on_the_total(tmp_path):
    with ZhiPingSimulator(count=230, seed=2) as sim:
        doc = zhiping_profile(**{"stream.incremental.seek": False})
        got = read_all(RestSource(RestProfile.load(write_profile(tmp_path, doc)), conn_for(sim)))
        assert len({r["interview_id"] for r in got}) == len(got) == 230
        assert sim.requests[LIST_PATH] == 3  # 100 + 100 + 30 of total 230: no empty page asked for


def test_page_numbers_without_a_total_stop_on_an_empty_page(tmp_path):
    with ZhiPingSimulator(count=150, seed=2) as sim:
        doc = zhiping_profile(**{"stream.incremental.seek": False})
        del doc["stream"]["paginator"]["total_path"]
        got = read_all(RestSource(RestProfile.load(write_profile(tmp_path, doc)), conn_for(sim)))
        assert len(got) == 150 and sim.requests[LIST_PATH] == 3  # 100, 50, then an empty page


def test_an_envelope_error_carries_the_vendor_message_masked_and_never_the_body(tmp_path):
    with ZhiPingSimulator(count=20, seed=2) as sim:
        doc = zhiping_profile(**{"stream.params": {"page_size": "abc"}})  # the vendor answers code 40004
        doc["stream"]["paginator"].pop("size_param")
        source = RestSource(RestProfile.load(write_profile(tmp_path, doc)), conn_for(sim))
        with pytest.raises(SourceResponseError) as err:
            read_all(source)
        message = str(err.value)
        assert message.startswith("source 'zhiping': GET /open/v1/interview/list: vendor code 40004: 参数错误")
        assert "{" not in message and "data" not in message


def test_vendor_messages_are_masked_and_trimmed():
    text = safe_message("候选人 110101199003078515 手机 138-1234-5678 邮箱 a.b@qq.com 视频 https://v.x/1 " + "很长" * 60)
    assert "110101199003078515" not in text and "1234-5678" not in text and "qq.com" not in text
    assert "https://" not in text and len(text) <= 80 and text.endswith("...")


def test_a_vendor_busy_code_is_retried_and_the_read_goes_on(tmp_path):
    with ZhiPingSimulator(count=50, seed=2) as sim:
        source = RestSource(RestProfile.load(write_profile(tmp_path, zhiping_profile())), conn_for(sim))
        sim.busy = 2  # within max_retries=2
        assert len(read_all(source)) == 50 and sim.busy == 0
        sim.busy = 3
        with pytest.raises(Exception) as err:
            read_all(source)
        assert type(err.value).__name__ == "SourceUnavailable" and "vendor code 42900" in str(err.value)


# -- cursor formats ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, tz, raw, written", [
    ("iso", "UTC", "2026-11-03T01:45:00Z", "2026-11-03T01:45:00+00:00"),
    ("iso", "Asia/Shanghai", "2026-11-03T09:45:00", "2026-11-03T09:45:00+08:00"),
    ("epoch_s", "UTC", 1793670300, "1793670300"),
    ("epoch_ms", "UTC", "1793670300000", "1793670300000"),
    ("%Y-%m-%d %H:%M:%S", "Asia/Shanghai", "2026-11-03 09:45:00", "2026-11-03 09:45:00"),
    ("%Y%m%d%H%M%S", "Asia/Shanghai", "20261103094500", "20261103094500"),
])
def test_cursor_formats_read_vendor_times_as_utc_and_write_them_back(fmt, tz, raw, written):
    cursor = CursorFormat(fmt, tz)
    moment = cursor.parse(raw)
    assert moment == datetime(2026, 11, 3, 1, 45, tzinfo=timezone.utc)
    assert cursor.format(moment) == written


def test_a_naive_beijing_time_is_not_read_as_utc():
    assert CursorFormat("%Y-%m-%d %H:%M:%S", "Asia/Shanghai").parse("2026-11-03 00:30:00") == \
        datetime(2026, 11, 2, 16, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        CursorFormat("%Y-%m-%d %H:%M:%S", "Asia/Shanghai").parse("2026-11-03T00:30:00+08:00")


# -- limits ------------------------------------------------------------------------------------------
def test_the_rate_limiter_spaces_requests_to_the_configured_rate():
    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)  # 2 per second, bursts of 2
    for _ in range(12):
        limiter.acquire()
    # 2 from the full bucket, then one every 0.5 s: 10 requests -> 5 s.
    assert len(slept) == 10 and sum(slept) == pytest.approx(5.0)
    now[0] += 60  # idle for a minute: the bucket refills only to its capacity
    slept.clear()
    for _ in range(3):
        limiter.acquire()
    assert slept == [pytest.approx(0.5)]


def test_requests_per_minute_is_applied_to_every_request(tmp_path):
    waits = []
    with ZhiPingSimulator(count=230, seed=2) as sim:
        doc = zhiping_profile(**{"limits.requests_per_minute": 60})
        source = RestSource(RestProfile.load(write_profile(tmp_path, doc)), conn_for(sim), sleep=waits.append)
        assert len(read_all(source)) == 230
        # 3 requests at 1/s with a bucket of 1: the 2nd waits about 1 s; the injected sleep does
        # not pass time, so the 3rd is owed that second too and waits about 2 s.
        assert len(waits) == 2 and 0.5 < waits[0] <= 1.0 and 1.5 < waits[1] <= 2.0
        assert sim.requests[LIST_PATH] == 3


def test_a_page_that_is_not_json_after_the_retries_is_a_typed_error(tmp_path):
    with ZhiPingSimulator(count=30, seed=2) as sim:
        source = RestSource(RestProfile.load(write_profile(tmp_path, zhiping_profile())), conn_for(sim))
        sim.truncate(LIST_PATH, count=3)  # max_retries 2 -> 3 attempts, all cut off
        with pytest.raises(SourceResponseError) as err:
            read_all(source)
        assert "not valid JSON" in str(err.value) and "3 attempts" in str(err.value)
        sim.truncate(LIST_PATH, count=2)
        assert len(read_all(source)) == 30


def test_other_4xx_fail_fast_without_retries(tmp_path):
    with FeedSimulator("bearer", "offset", count=10) as sim:
        profile = RestProfile.load(write_profile(tmp_path, feed_profile(
            {"type": "bearer"}, {"type": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 5})))
        sim.fail(FEED_PATH, 404, count=5)
        with pytest.raises(SourceResponseError) as err:
            read_all(RestSource(profile, conn_for(sim)))
        assert "HTTP 404" in str(err.value) and sim.requests[FEED_PATH] == 1


def test_profile_dump_is_json_safe():
    # The profile carries no secret: it can be shown whole (the connection holds the secrets).
    profile = RestProfile.load(REPO / "connectors/profiles/zhiping.yaml")
    assert "secret" not in json.dumps(profile.auth) and profile.start == datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
