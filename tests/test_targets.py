"""Target profiles, target mapping files and the target simulators' Idempotency-Key semantics."""

from __future__ import annotations

import threading

import pytest
import requests

from connectors.targets.profile import TargetProfile
from connectors.targets.shape import Shape
from hiresync.errors import ConfigError
from simulators.hrtargets import GroupHRSimulator, HRCloudSimulator
from tests.helpers import REPO

RECORD = {"externalKey": "aiview:AV-1", "candidate_ref": "c1", "assessment_status": "pass", "revision": 1}


def put(sim, key: str | None, body: dict, path: str = "/open-api/v1/assessments/aiview%3AAV-1"):
    headers = {"X-Api-Key": sim.api_key} | ({"Idempotency-Key": key} if key else {})
    return requests.put(sim.url + path, json=body, headers=headers, timeout=5)


def test_same_key_same_payload_replays_the_stored_response_without_applying_again():
    with HRCloudSimulator() as sim:
        first, again = put(sim, "k1", RECORD), put(sim, "k1", RECORD)
        assert first.status_code == again.status_code == 201 and first.json() == again.json()
        assert sim.applied["aiview:AV-1"] == 1


def test_same_key_different_payload_is_422():
    with HRCloudSimulator() as sim:
        put(sim, "k1", RECORD)
        other = put(sim, "k1", RECORD | {"revision": 2})
        assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
        assert sim.applied["aiview:AV-1"] == 1


def test_same_key_still_in_progress_is_409():
    with HRCloudSimulator() as sim:
        sim.hold = threading.Event()
        first: list = []
        worker = threading.Thread(target=lambda: first.append(put(sim, "k1", RECORD)))
        worker.start()
        assert sim.holding.wait(5)
        second = put(sim, "k1", RECORD)
        sim.hold.set()
        worker.join(5)
        assert second.status_code == 409 and first[0].status_code == 201


def test_rate_limit_answers_429_with_retry_after_and_a_lost_response_was_applied():
    with HRCloudSimulator() as sim:
        sim.throttle, sim.retry_after_seconds = 1, 7
        limited = put(sim, "k1", RECORD)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7" and not sim.applied
        sim.lose_responses = 1
        assert put(sim, "k1", RECORD).status_code == 504 and sim.applied["aiview:AV-1"] == 1
        assert put(sim, "k1", RECORD).status_code == 201 and sim.applied["aiview:AV-1"] == 1  # replayed


def test_the_group_hr_batch_endpoint_needs_a_token_and_a_key():
    with GroupHRSimulator() as sim:
        url = sim.url + "/api/v1/assessment-results/batch"
        assert requests.post(url, json={"items": []}, timeout=5).status_code == 401
        token = requests.post(sim.url + "/oauth/token", data={"grant_type": "client_credentials", "client_id": sim.client_id,
                                                             "client_secret": sim.client_secret}, timeout=5).json()["access_token"]
        unkeyed = requests.post(url, json={"items": []}, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert unkeyed.status_code == 400


def test_the_repository_target_profiles_and_mappings_load():
    for name in ("ehr", "grouphr", "hrcloud"):
        profile = TargetProfile.load(REPO / f"connectors/profiles/targets/{name}.yaml")
        assert profile.name == name
        if profile.mapping:
            Shape.load(REPO / profile.mapping)


@pytest.mark.parametrize("text,key,problem", [
    ("upsert: {mode: batch, method: POST, path: /x}", "upsert", "idempotency_header"),
    ("upsert: {mode: record, method: PUT, path: /x}", "upsert.path", "key in the path"),
    ("upsert: {mode: batch, method: POST, path: /x, idempotency_header: K, retries: 3}", "upsert", "unknown key"),
])
def test_a_broken_target_profile_names_file_key_and_problem(tmp_path, text, key, problem):
    path = tmp_path / "t.yaml"
    path.write_text("target: t\nkind: rest\nrecipient: t\nconnection: c\nmapping: m.yaml\n"
                    "auth: {type: bearer}\n" + text + "\n")
    with pytest.raises(ConfigError) as err:
        TargetProfile.load(path)
    assert err.value.file == str(path) and err.value.key == key and problem in err.value.problem


def test_a_mapping_file_shapes_the_record_and_leaves_out_what_is_absent(tmp_path):
    shape = Shape.load(REPO / "mappings/targets/grouphr.yaml")
    payload = {"candidate": {"candidate_key": "c1", "full_name": "张三"},
               "result": {"result_key": "aiview:AV-1", "vendor": "aiview", "version": 2, "status": "passed",
                          "overall_score": 86.5, "ai_comment": "表达清晰", "report_url": "https://r/1", "video_url": None},
               "dimensions": [{"code": "comm", "name": "沟通", "score": 90.0, "comment": None}]}
    rec = shape.render(payload)
    assert rec["externalKey"] == "aiview:AV-1" and rec["candidate"] == {"name": "张三"}
    a = rec["assessment"]
    assert (a["status"], a["score"], a["maxScore"], a["note"], a["resultUrl"]) == ("PASSED", 86.5, 100, "表达清晰", "https://r/1")
    assert a["videoUrl"] is None and "positionCode" not in rec["position"]
    assert a["subResults"] == [{"code": "comm", "name": "沟通", "score": 90.0, "maxScore": 100, "comment": None}]
    bad = tmp_path / "m.yaml"
    bad.write_text("mapping: x\nversion: '1'\nrecord: {a: {path: x, value: 1}}\n")
    with pytest.raises(ConfigError) as err:
        Shape.load(bad)
    assert err.value.key.startswith("record.a")
