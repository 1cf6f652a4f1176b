"""Outbox -> the group HR system and the HR cloud (real simulators), on SQLite, PostgreSQL, MariaDB.

Fault tests of DESIGN.md invariant 4: at-least-once delivery, idempotent receivers, order per
candidate. Time is moved with the relay's `now` instead of sleeping.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from connectors.targets.ehr_sql import EhrSqlTarget, ehr_candidates
from hiresync.delivery import outbox as outbox_mod
from hiresync.cli import app
from hiresync.errors import HireSyncError
from hiresync.hub.models import Outbox
from hiresync.hub.store import engine_for, transaction
from hiresync.delivery.outbox import relay
from hiresync.privacy.pii import Keyring, mask_national_id
from hiresync.pipeline import runner
from hiresync.pipeline.runner import run_source
from simulators.hrtargets import GroupHRSimulator, HRCloudSimulator
from tests.helpers import outbox_bodies, connect

LATER = timedelta(hours=2)  # past every backoff, lease and open circuit of the profiles


@pytest.fixture
def targets(settings, aiview, monkeypatch, tmp_path):
    """aiview delivers to all three targets; the REST ones are simulators."""
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  aiview: {profile: connectors/profiles/aiview.yaml, mapping: mappings/aiview.yaml, "
                       "targets: [ehr, grouphr, hrcloud]}\n")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(sources))
    monkeypatch.setenv("HIRESYNC_WORKFLOW", str(tmp_path / "no-workflow.yaml"))  # records only (tests/test_workflow.py)
    outbox_mod.CIRCUITS.clear()
    with GroupHRSimulator() as grouphr, HRCloudSimulator() as hrcloud:
        connect(monkeypatch, grouphr, "hiresync_grouphr")
        connect(monkeypatch, hrcloud, "hiresync_hrcloud")
        from hiresync.config.settings import Settings

        yield Settings.from_env(), grouphr, hrcloud
    outbox_mod.CIRCUITS.clear()


def load_only(settings, monkeypatch) -> dict:
    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    return run_source("aiview", settings)


def rows(settings, target: str, **where) -> list:
    with transaction(settings.hub_url) as s:
        q = select(Outbox).where(Outbox.target == target).filter_by(**where).order_by(Outbox.id)
        return list(s.scalars(q))


def later() -> datetime:
    return datetime.now(timezone.utc) + LATER


def test_each_target_gets_its_mapping_and_the_hr_cloud_masked_id_and_phone(targets, aiview):
    settings, grouphr, hrcloud = targets
    summary = run_source("aiview", settings)
    loaded = summary["inserted"]
    assert len(grouphr.records) == len(hrcloud.records) == loaded > 0
    ids = {r["candidate"]["id_card"].upper() for r in aiview.records()}
    phones = {r["candidate"]["mobile"][-11:] for r in aiview.records() if r["candidate"].get("mobile")}

    # The group HR system (HR's own system) gets the resident ID plain, in its assessment shape.
    gh = next(iter(grouphr.records.values()))
    assert gh["candidate"]["idNumber"] in ids and gh["assessment"]["maxScore"] == 100
    assert gh["assessment"]["status"] in ("PASSED", "FAILED", "PENDING", "INCOMPLETE")
    assert isinstance(gh["assessment"]["subResults"], list) and gh["assessment"]["subResults"]
    # The HR cloud (business departments, remote staff) gets them masked.
    cloud = json.dumps(list(hrcloud.records.values()), ensure_ascii=False)
    assert not [v for v in ids | phones if v in cloud]
    rec = next(iter(hrcloud.records.values()))
    assert re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", rec["id_number"]) and re.fullmatch(r"1\d{2}\*{4}\d{4}", rec["phone"])
    assert rec["full_score"] == 100 and rec["assessment_status"] in ("pass", "fail", "pending", "incomplete")
    # The EHR (the archive) keeps them plain; each target's own id is kept as target_ref.
    with engine_for(settings.ehr_url).connect() as conn:
        assert set(conn.scalars(select(ehr_candidates.c.national_id))) <= ids
    assert {r.target_ref.split("-")[0] for r in rows(settings, "grouphr")} == {"GROUPHR"}
    assert {r.status for t in ("ehr", "grouphr", "hrcloud") for r in rows(settings, t)} == {"sent"}
    # Video and report links are bearer links (face video): the HR cloud's audience gets neither.
    assert not [r for r in hrcloud.records.values() if r.get("video_url") or r.get("report_url")]
    assert any(r["assessment"].get("videoUrl") for r in grouphr.records.values())


@pytest.mark.parametrize("target", ["grouphr", "hrcloud"])
def test_a_lost_response_is_retried_with_the_same_key_and_the_target_holds_one_record(targets, monkeypatch, target):
    settings, grouphr, hrcloud = targets
    sim = {"grouphr": grouphr, "hrcloud": hrcloud}[target]
    load_only(settings, monkeypatch)
    pending = len(rows(settings, target))
    sim.lose_responses = 1  # applied, then a gateway loses the answer
    keys = Keyring.load(settings.key_file)
    with pytest.raises(HireSyncError, match=f"delivery to '{target}' failed \\(HTTP 504: gateway_timeout\\); 50 rows"):
        relay(settings, keys, target, batch_size=50)
    first_key = sim.keys_seen[0]
    waiting = len(rows(settings, target, status="pending"))
    assert waiting >= 50  # the batch whose answer was lost, and later rows of its candidates behind it
    assert relay(settings, keys, target, batch_size=50, now=later()) == waiting
    assert all(r.status == "sent" for r in rows(settings, target))
    assert len(sim.records) == pending and set(sim.applied.values()) == {1}  # nothing applied twice
    assert sim.keys_seen.count(first_key) == 2  # the lost request was sent again with the same key


@pytest.mark.parametrize("target", ["grouphr", "hrcloud"])
def test_a_relay_killed_after_a_2xx_before_marking_sent_duplicates_nothing(targets, monkeypatch, target):
    settings, grouphr, hrcloud = targets
    sim = {"grouphr": grouphr, "hrcloud": hrcloud}[target]
    load_only(settings, monkeypatch)
    pending = len(rows(settings, target))
    keys = Keyring.load(settings.key_file)

    def die(*args, **kwargs):
        raise SystemExit("relay killed")

    real_record = outbox_mod._record
    monkeypatch.setattr(outbox_mod, "_record", die)
    with pytest.raises(SystemExit):
        relay(settings, keys, target, batch_size=40)
    assert len(sim.records) == 40 and len(rows(settings, target, status="pending")) == pending
    monkeypatch.setattr(outbox_mod, "_record", real_record)
    assert relay(settings, keys, target, batch_size=40, now=later()) == pending  # after the lease: again, same keys
    assert len(sim.records) == pending and set(sim.applied.values()) == {1}


def test_a_target_down_for_a_while_loses_nothing_and_drains_in_order(targets, aiview, monkeypatch):
    settings, grouphr, _ = targets
    load_only(settings, monkeypatch)
    changed = aiview.rescore(10)
    run_source("aiview", settings)  # the second versions queue behind the first (no delivery: STEPS patched)
    total = len(rows(settings, "grouphr"))
    keys = Keyring.load(settings.key_file)

    grouphr.outage = True
    with pytest.raises(HireSyncError, match="circuit open"):
        relay(settings, keys, "grouphr", batch_size=20)
    tried = sum(grouphr.requests.values())  # the token endpoint is down too
    assert tried == 5  # the profile's failure_threshold: then the circuit opens
    with pytest.raises(HireSyncError, match="circuit open"):
        relay(settings, keys, "grouphr", batch_size=20)  # open: no request at all
    assert sum(grouphr.requests.values()) == tried
    waiting = rows(settings, "grouphr", status="pending")
    assert len(waiting) == total and all(r.next_attempt_at for r in waiting if r.attempts)

    grouphr.outage = False
    assert relay(settings, keys, "grouphr", batch_size=20, now=later()) == total
    assert len(grouphr.received) == total and set(grouphr.applied.values()) <= {1, 2}
    versions: dict[str, list] = {}
    for key, version in grouphr.received:
        versions.setdefault(key, []).append(version)
    assert all(v == sorted(v) for v in versions.values())
    assert all(versions[f"aiview:{k}"][-1] == 2 for k in changed if f"aiview:{k}" in versions)


def test_a_400_dead_letters_at_once_with_a_masked_reason_and_the_rest_go_on(targets, monkeypatch):
    settings, grouphr, hrcloud = targets
    load_only(settings, monkeypatch)
    keys = Keyring.load(settings.key_file)
    victim = rows(settings, "grouphr")[3]
    payload = outbox_bodies(settings, [victim])[0]
    nid = payload["candidate"]["national_id"]
    grouphr.refuse = {payload["result"]["result_key"]}
    delivered = relay(settings, keys, "grouphr")
    dead = rows(settings, "grouphr", status="dead")
    assert [d.id for d in dead] == [victim.id] and delivered == len(rows(settings, "grouphr")) - 1
    assert dead[0].attempts == 1 and dead[0].response_status == 400
    assert nid not in dead[0].last_error and mask_national_id(nid) in dead[0].last_error
    assert dead[0].last_error.startswith("HTTP 400: candidate_rejected")

    result = CliRunner().invoke(app, ["outbox", "status", "--json"])
    doc = json.loads(result.output)
    assert doc["targets"]["grouphr"]["dead"] == 1 and doc["dead_letters"][0]["id"] == victim.id
    assert nid not in result.output
    grouphr.refuse = set()
    assert "1 rows due now" in CliRunner().invoke(app, ["outbox", "retry", "--target", "grouphr"]).output
    assert relay(settings, keys, "grouphr") == 1 and len(grouphr.records) == delivered + 1
    assert "rows queued again" in CliRunner().invoke(app, ["outbox", "replay", "grouphr"]).output
    assert relay(settings, keys, "grouphr") == delivered + 1
    assert set(grouphr.applied.values()) == {1}  # a replay with the same keys applies nothing twice


def test_a_refusal_quoting_personal_data_next_to_chinese_text_is_masked(targets, monkeypatch):
    settings, grouphr, _ = targets
    load_only(settings, monkeypatch)
    keys = Keyring.load(settings.key_file)
    victims = rows(settings, "grouphr")[:5]
    payloads = outbox_bodies(settings, victims)
    grouphr.refuse = {p["result"]["result_key"] for p in payloads}
    grouphr.refuse_message = "手机号{mobile}与身份证{nid}已注册,邮箱{email}已占用"
    relay(settings, keys, "grouphr")
    dead = rows(settings, "grouphr", status="dead")
    assert len(dead) == 5
    plain = set()
    for p in payloads:
        cand = p["candidate"]
        plain |= {cand["national_id"], cand["mobile"].removeprefix("+86")} | ({cand["email"]} if cand.get("email") else set())
    shown = " ".join(d.last_error for d in dead) + CliRunner().invoke(app, ["outbox", "status", "--json"]).output
    assert [v[:3] for v in plain if v in shown] == []
    assert "已注册" in shown and "****" in shown


def test_a_post_is_never_retried_without_an_idempotency_key(targets, monkeypatch):
    settings, grouphr, _ = targets
    load_only(settings, monkeypatch)
    keys = Keyring.load(settings.key_file)
    grouphr.throttle, grouphr.retry_after_seconds, grouphr.lose_responses = 1, 30, 1
    started = datetime.now(timezone.utc)
    with pytest.raises(HireSyncError, match="rows stay pending"):
        relay(settings, keys, "grouphr", batch_size=100, now=started)
    limited = {r.id for r in rows(settings, "grouphr", response_status=429)}
    assert len(limited) == 100 and rows(settings, "grouphr", response_status=504)
    # Retry-After is honoured: a 429'd row is not due before 30 s have passed; the others back off less.
    # (MariaDB keeps whole seconds)
    assert all(r.next_attempt_at >= started + timedelta(seconds=29) for r in rows(settings, "grouphr") if r.id in limited)
    relay(settings, keys, "grouphr", batch_size=100, now=started + timedelta(seconds=10))
    assert {r.id for r in rows(settings, "grouphr", status="pending")} >= limited
    for _ in range(4):
        try:
            relay(settings, keys, "grouphr", batch_size=100, now=later())
            break
        except HireSyncError:
            outbox_mod.CIRCUITS.clear()
    assert all(r.status == "sent" for r in rows(settings, "grouphr"))
    assert grouphr.keys_seen and None not in grouphr.keys_seen  # every POST carried a key
    assert len(grouphr.keys_seen) > len(set(grouphr.keys_seen))  # retries happened, each with the same key
    assert set(grouphr.applied.values()) == {1}


def test_relays_claim_disjoint_batches(targets, monkeypatch):
    """FOR UPDATE SKIP LOCKED on PostgreSQL/MariaDB, the lease on SQLite: two relays never share rows."""
    settings, *_ = targets
    load_only(settings, monkeypatch)
    now = datetime.now(timezone.utc)
    engine = engine_for(settings.hub_url)
    with engine.connect() as other:
        locked: set[int] = set()
        if engine.dialect.name != "sqlite":  # another relay's open claim transaction holds 10 rows
            other.begin()
            locked = set(other.scalars(text("SELECT id FROM outbox WHERE target = 'grouphr' AND status = 'pending' "
                                          "ORDER BY id LIMIT 10 FOR UPDATE")))
        first = outbox_mod._claim(settings, "grouphr", 10, now, "relay-a", 300)
        second = outbox_mod._claim(settings, "grouphr", 10, now, "relay-b", 300)
        if locked:
            other.rollback()
    a, b = {r.id for r in first.rows}, {r.id for r in second.rows}
    assert a and b and not a & b and not (a | b) & locked


def test_a_claim_is_sent_in_parts_and_what_follows_a_part_that_must_wait_is_not_tried(targets, monkeypatch):
    """A claim's bodies are rendered and sent PART_ROWS at a time (a relay's memory follows the
    part, not the claim), and its outcomes are recorded once. After a part with a row that must
    wait, the claim's later parts are not tried, and they go back unleased for the next relay."""
    settings, grouphr, _ = targets
    load_only(settings, monkeypatch)
    keys = Keyring.load(settings.key_file)
    monkeypatch.setattr(outbox_mod, "PART_ROWS", 40)
    sent_at_once, recorded_at_once = [], []
    real_upsert, real_record = EhrSqlTarget.upsert, outbox_mod._record

    def upsert(target, payloads):
        sent_at_once.append(len(payloads))
        real_upsert(target, payloads)

    def record(settings, done, now):
        recorded_at_once.append(len(done.updates))
        real_record(settings, done, now)

    monkeypatch.setattr(EhrSqlTarget, "upsert", upsert)
    monkeypatch.setattr(outbox_mod, "_record", record)
    pending = len(rows(settings, "ehr"))
    assert relay(settings, keys, "ehr", batch_size=200) == pending > 200
    assert max(sent_at_once) == 40 and sum(sent_at_once) == pending
    assert recorded_at_once == [200] * (pending // 200) + ([pending % 200] if pending % 200 else [])

    grouphr.throttle, grouphr.retry_after_seconds = 1, 600  # the first request is refused for ten minutes
    with pytest.raises(HireSyncError, match=r"delivery to 'grouphr' failed \(HTTP 429"):
        relay(settings, keys, "grouphr", batch_size=200)
    first_claim = rows(settings, "grouphr")[:200]
    assert [r.response_status for r in first_claim[:40]] == [429] * 40  # the first part, refused
    untried = first_claim[40:]
    assert all(r.attempts == 0 and r.status == "pending" and r.claimed_until is None for r in untried)
    left = rows(settings, "grouphr", status="pending")  # the claim's 200, and later rows of their candidates
    assert len(left) >= 200
    assert relay(settings, keys, "grouphr", batch_size=200, now=later()) == len(left)
    assert len(grouphr.records) == len(rows(settings, "grouphr")) and set(grouphr.applied.values()) == {1}


def test_a_misconfigured_target_stops_only_its_own_delivery(targets, monkeypatch):
    settings, grouphr, hrcloud = targets
    monkeypatch.setenv("AIRFLOW_CONN_HIRESYNC_HRCLOUD", json.dumps({"conn_type": "http", "host": hrcloud.url,
                                                                    "password": "wrong-key"}))
    with pytest.raises(HireSyncError) as err:
        run_source("aiview", settings)
    assert "'hrcloud'" in str(err.value) and "credentials refused (HTTP 401)" in str(err.value)
    assert "wrong-key" not in str(err.value)
    assert {r.status for r in rows(settings, "grouphr")} == {"sent"} and {r.status for r in rows(settings, "ehr")} == {"sent"}
    assert {r.status for r in rows(settings, "hrcloud")} == {"pending"}
    assert all(r.claimed_by is None for r in rows(settings, "hrcloud"))
