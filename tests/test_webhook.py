"""The push vendor end to end: KuaiPin's simulator signs and POSTs deliveries to the real receiver
(`hiresync webhook serve`'s server), which stores them in the hub's inbox; the sync run drains the
inbox and fills gaps from the replay endpoint. On every hub database."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
import yaml
from sqlalchemy import func, select

from bench.webhook_load import run_load
from connectors.webhook.signature import Rejected, verify
from hiresync.ingest import inbox
from hiresync.errors import HireSyncError, ConfigError
from hiresync.hub.models import InboxDelivery, InterviewResult, RecordLineage, Run, Watermark
from hiresync.hub.store import transaction
from hiresync.privacy.pii import Keyring
from hiresync.pipeline import load as load_module
from hiresync.pipeline.runner import run_source
from simulators.kuaipin import REPLAY_PATH, KuaiPinSimulator, encode, signature
from tests.helpers import REPO, connect, leaks

SOURCE = "kuaipin"


@pytest.fixture
def kuaipin(monkeypatch):
    with KuaiPinSimulator(count=120, seed=5, defect_rate=0.05) as sim:
        connect(monkeypatch, sim, "hiresync_kuaipin")  # the replay API: API token as the password
        monkeypatch.setenv("AIRFLOW_CONN_HIRESYNC_KUAIPIN_WEBHOOK",
                           json.dumps({"conn_type": "http", "password": sim.signing_secret}))
        yield sim


@pytest.fixture
def receiver(settings, kuaipin):
    from hiresync.ingest.webhook import WebhookReceiver

    with WebhookReceiver(settings, [SOURCE]) as r:
        yield r


def inbox_rows(settings) -> list[InboxDelivery]:
    with transaction(settings.hub_url) as s:
        return list(s.scalars(select(InboxDelivery).where(InboxDelivery.source == SOURCE).order_by(InboxDelivery.id)))


def results(settings) -> dict[str, InterviewResult]:
    with transaction(settings.hub_url) as s:
        return {r.vendor_result_id: r for r in s.scalars(select(InterviewResult).where(InterviewResult.vendor == SOURCE))}


def lineage_per_payload(settings, run_id: str | None = None) -> dict[str, int]:
    with transaction(settings.hub_url) as s:
        return dict(s.execute(select(RecordLineage.payload_hash, func.count()).where(
            RecordLineage.source == SOURCE, *([RecordLineage.run_id == run_id] if run_id else []))
            .group_by(RecordLineage.payload_hash)).all())


def clean(events: list[dict], sim: KuaiPinSimulator) -> list[dict]:
    return [e for e in events if e["data"]["result_id"] not in sim.defects]


# -- the receiver -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, status", [
    ("good", 200), ("tampered body", 401), ("wrong secret", 401), ("stale timestamp", 400),
    ("timestamp from the future", 400), ("no signature", 400),
])
def test_the_receiver_stores_only_authentic_fresh_deliveries(settings, kuaipin, receiver, case, status):
    event = kuaipin.emit(1)[0]
    url = receiver.url_for(SOURCE)
    body = encode(event)
    if case == "good":
        got = kuaipin.post(url, event)
    elif case == "tampered body":
        got = kuaipin.post(url, event, body=body.replace(b'"score":', b'"score":1'))
    elif case == "wrong secret":
        got = kuaipin.post(url, event, secret="not-the-signing-secret")
    elif case == "stale timestamp":
        got = kuaipin.post(url, event, timestamp=int(time.time()) - 301)
    elif case == "timestamp from the future":
        got = kuaipin.post(url, event, timestamp=int(time.time()) + 310)  # margin: the receiver reads the clock later
    else:
        got = requests.post(url, data=body, headers={"X-KuaiPin-Delivery": event["id"]}, timeout=10).status_code
    assert got == status
    stored = inbox_rows(settings)
    assert [r.delivery_id for r in stored] == ([event["id"]] if status == 200 else [])
    assert receiver.counts["stored" if status == 200 else "rejected"] == 1


def test_signature_check_is_over_the_raw_bytes_with_the_timestamp_inside():
    body, ts = b'{"id":"e1","data":{}}', str(int(time.time()))
    good = signature("s3cret", ts, body)
    verify("s3cret", ts, good, body, prefix="v1=")  # no exception
    for args in [("s3cret", ts, good, body + b" "),                     # one byte more
                 ("s3cret", str(int(ts) - 1), good, body),             # timestamp changed: signed text changed
                 ("other", ts, good, body),
                 ("s3cret", ts, good.removeprefix("v1="), body)]:      # scheme prefix missing
        with pytest.raises(Rejected) as err:
            verify(*args, prefix="v1=")
        assert err.value.status == 401 and "s3cret" not in str(err.value)


def test_a_repeated_delivery_id_is_acknowledged_and_stored_once(settings, kuaipin, receiver):
    events = kuaipin.emit(20)
    statuses = kuaipin.push(receiver.url_for(SOURCE), events, duplicates=8, concurrency=8)
    assert statuses == {200: 28}
    assert sorted(r.delivery_id for r in inbox_rows(settings)) == sorted(e["id"] for e in events)
    assert receiver.counts["stored"] == 20 and receiver.counts["duplicate"] == 8
    # The same id with other content is not a repeat: refused with 409 and an alert, the first one stays.
    tampered = dict(events[0], type="interview.result.updated")
    assert kuaipin.post(receiver.url_for(SOURCE), tampered) == 409
    keys = Keyring.load(settings.key_file)
    row = inbox_rows(settings)[0]
    assert json.loads(keys.decrypt(row.payload_enc, inbox.context(SOURCE, row.delivery_id)))["type"] == events[0]["type"]
    assert receiver.counts["conflict"] == 1


def test_a_captured_delivery_replayed_under_other_ids_is_refused_and_loses_nothing(settings, kuaipin, receiver, caplog):
    """The body's delivery-id field must equal the header: a replay under ids 2..20 cannot make the
    vendor's real deliveries 2..20 look like duplicates."""
    events = kuaipin.emit(20)
    url = receiver.url_for(SOURCE)
    assert kuaipin.post(url, events[0]) == 200
    replays = [kuaipin.post(url, events[0], delivery_id=e["id"]) for e in events[1:]]
    assert set(replays) == {400}
    assert kuaipin.push(url, events[1:]) == {200: 19}
    assert receiver.counts["stored"] == 20 and receiver.counts["duplicate"] == 0
    assert sorted(r.delivery_id for r in inbox_rows(settings)) == sorted(e["id"] for e in events)
    assert "id" in " ".join(r.getMessage() for r in caplog.records)


def test_a_known_delivery_id_with_another_body_raises_an_alert(settings, kuaipin):
    from hiresync.ingest.webhook import WebhookReceiver

    alerts: list[str] = []
    with WebhookReceiver(settings, [SOURCE], alert=alerts.append) as r:
        event = kuaipin.emit(1)[0]
        assert kuaipin.post(r.url_for(SOURCE), event) == 200
        assert kuaipin.post(r.url_for(SOURCE), event) == 200  # a true repeat: same bytes
        changed = json.loads(json.dumps(event))
        changed["data"]["score"] = 1
        assert kuaipin.post(r.url_for(SOURCE), changed) == 409
    assert len(alerts) == 1 and SOURCE in alerts[0] and event["id"] in alerts[0]
    assert event["data"]["candidate"]["id_number"] not in alerts[0]


@pytest.mark.parametrize("header, value", [("timestamp", "\u00b2"), ("timestamp", "17\u00b9"),
                                           ("length", "\u00b2"), ("length", "1\u00b3")])
def test_unicode_digits_in_a_timestamp_or_content_length_get_a_400(settings, kuaipin, receiver, header, value):
    import http.client
    from urllib.parse import urlsplit

    event = kuaipin.emit(1)[0]
    body = encode(event)
    headers = {**kuaipin.headers(event["id"], body), "Content-Length": str(len(body))}
    if header == "timestamp":
        headers["X-KuaiPin-Timestamp"] = value
    else:
        headers["Content-Length"] = value
    u = urlsplit(receiver.url_for(SOURCE))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("POST", u.path, skip_accept_encoding=True)
    for name, v in headers.items():
        conn.putheader(name, v.encode("latin-1"))  # as HTTP headers are read: '²' is a digit to str.isdigit
    conn.endheaders(body)
    assert conn.getresponse().status == 400
    conn.close()
    assert inbox_rows(settings) == []


def test_a_webhook_profile_must_say_which_body_field_holds_the_delivery_id(tmp_path):
    from connectors.kinds import load_profile

    doc = yaml.safe_load((REPO / "connectors/profiles/kuaipin.yaml").read_text(encoding="utf-8"))
    doc.pop("replay")
    path = tmp_path / "kuaipin.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert err.value.key == "delivery_id_field"
    doc["delivery_id_field"] = "id"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert load_profile(path).delivery_id_field == "id"


def test_deliveries_are_stored_encrypted_and_nothing_personal_or_secret_is_logged(settings, kuaipin, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    events = kuaipin.emit(10)
    kuaipin.push(receiver.url_for(SOURCE), events)
    kuaipin.post(receiver.url_for(SOURCE), events[0], secret="wrong-" + kuaipin.signing_secret)
    run_source(SOURCE, settings)
    values = {v for e in events for v in (e["data"]["candidate"]["name"], e["data"]["candidate"]["id_number"],
                                          e["data"]["candidate"]["email"], e["data"]["video"]["url"])}
    stored = " ".join(r.payload_enc for r in inbox_rows(settings))
    assert not leaks(stored, values) and not leaks(caplog.text, values)
    assert kuaipin.signing_secret not in caplog.text and kuaipin.api_token not in caplog.text
    assert "delivery rejected" in caplog.text and events[0]["id"] in caplog.text  # logs say what happened


def test_unknown_paths_methods_and_oversized_bodies_are_refused(settings, kuaipin, receiver):
    event = kuaipin.emit(1)[0]
    assert kuaipin.post(f"{receiver.url}/webhooks/nosuchsource", event) == 404
    assert requests.get(receiver.url_for(SOURCE), timeout=10).status_code == 405
    assert requests.post(receiver.url_for(SOURCE), data=b"x" * (1024 * 1024 + 1), timeout=10).status_code == 413
    assert inbox_rows(settings) == []


# -- the sync run drains the inbox ----------------------------------------------------------------------
def test_the_inbox_is_drained_exactly_once_across_runs(settings, kuaipin, receiver):
    events = kuaipin.emit(40)
    assert kuaipin.push(receiver.url_for(SOURCE), events, duplicates=10) == {200: 50}

    first = run_source(SOURCE, settings)
    assert first["status"] == "success" and first["pulled"] == 40
    assert first["inserted"] == len(clean(events, kuaipin)) and first["quarantined"] == 40 - first["inserted"]
    assert {r.status for r in inbox_rows(settings)} == {"drained"}
    assert {r.run_id for r in inbox_rows(settings)} == {first["run_id"]}

    # The vendor re-sends old deliveries; nothing new arrives: the second run has nothing to do.
    assert kuaipin.push(receiver.url_for(SOURCE), events[:5]) == {200: 5}
    second = run_source(SOURCE, settings)
    assert second["status"] == "success" and second["pulled"] == 0
    assert len(inbox_rows(settings)) == 40 and set(lineage_per_payload(settings).values()) == {1}

    # New events and a re-score: only those are pulled.
    later = kuaipin.emit(10) + kuaipin.rescore(3)
    kuaipin.push(receiver.url_for(SOURCE), later)
    third = run_source(SOURCE, settings)
    assert third["pulled"] == 13 and third["updated"] == 3
    assert len(results(settings)) == len(clean(events, kuaipin)) + len(clean(later[:10], kuaipin))
    assert set(lineage_per_payload(settings).values()) == {1}


def test_gaps_are_filled_from_the_replay_endpoint(settings, kuaipin, receiver):
    batch1 = kuaipin.emit(30)
    kuaipin.push(receiver.url_for(SOURCE), batch1)
    run_source(SOURCE, settings)
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, SOURCE).cursor_value
    assert mark.isoformat().startswith(batch1[-1]["created_at"][:19])

    batch2 = kuaipin.emit(30)
    lost = {e["id"] for e in batch2[3:8]}
    kuaipin.push(receiver.url_for(SOURCE), batch2, skip=lost)
    assert len(inbox_rows(settings)) == 55
    kuaipin.reset_requests()
    second = run_source(SOURCE, settings)

    assert kuaipin.requests[REPLAY_PATH] >= 1
    assert second["pulled"] == 30  # 25 from the inbox + 5 replayed; the overlap's old ones were drained already
    assert sorted(r.delivery_id for r in inbox_rows(settings)) == sorted(e["id"] for e in batch1 + batch2)
    assert {r.status for r in inbox_rows(settings)} == {"drained"}
    loaded = results(settings)
    assert all(e["data"]["result_id"] in loaded for e in clean(batch1 + batch2, kuaipin))
    with transaction(settings.hub_url) as s:
        run = s.get(Run, second["run_id"])
    assert run.pulled_since == mark - kuaipin_replay_overlap()


def kuaipin_replay_overlap():
    from datetime import timedelta

    doc = yaml.safe_load((REPO / "connectors/profiles/replay/kuaipin.yaml").read_text(encoding="utf-8"))
    return timedelta(seconds=doc["stream"]["incremental"]["overlap_seconds"])


def test_a_crash_in_the_closing_load_transaction_loses_no_delivery(settings, kuaipin, receiver, monkeypatch):
    events = kuaipin.emit(25)
    kuaipin.push(receiver.url_for(SOURCE), events)
    real = load_module.record_consumed

    def crash_after_marking(*args, **kwargs):
        real(*args, **kwargs)  # the inbox rows are marked drained... and then the process dies
        raise RuntimeError("simulated crash before commit")

    monkeypatch.setattr(load_module, "record_consumed", crash_after_marking)
    with pytest.raises(RuntimeError):
        run_source(SOURCE, settings)
    # The batches committed, the run did not: its deliveries are not marked, so the next run reads them.
    assert {r.status for r in inbox_rows(settings)} == {"new"}
    assert len(results(settings)) == len(clean(events, kuaipin))

    monkeypatch.setattr(load_module, "record_consumed", real)
    rerun = run_source(SOURCE, settings)
    assert rerun["pulled"] == 25 and rerun["inserted"] == 0 and rerun["unchanged"] == len(clean(events, kuaipin))
    assert {r.run_id for r in inbox_rows(settings)} == {rerun["run_id"]}
    assert len(results(settings)) == len(clean(events, kuaipin))
    assert set(lineage_per_payload(settings, rerun["run_id"]).values()) == {1}


def test_a_run_stopped_after_staging_leaves_the_deliveries_for_the_next_run(settings, kuaipin, receiver):
    from hiresync.pipeline.context import RunContext
    from hiresync.pipeline.extract import extract
    from hiresync.pipeline.transform import map_records
    from hiresync.pipeline.validate import validate

    events = kuaipin.emit(15)
    kuaipin.push(receiver.url_for(SOURCE), events)
    ctx = RunContext.open(SOURCE, "kuaipin__crashed", settings)
    for step in (extract, validate, map_records):  # ... and the worker is killed before load
        step(ctx)
    assert {r.status for r in inbox_rows(settings)} == {"new"}
    rerun = run_source(SOURCE, settings)
    assert rerun["pulled"] == 15 and {r.run_id for r in inbox_rows(settings)} == {rerun["run_id"]}
    # The next sync reaped the killed run (failed, staging removed): its load, retried later, is refused
    # with a clear message, loads nothing twice and marks nothing.
    with pytest.raises(HireSyncError, match="has no staged batches to load"):
        load_module.load(ctx)
    assert {r.run_id for r in inbox_rows(settings)} == {rerun["run_id"]}
    assert len(results(settings)) == len(clean(events, kuaipin))


# -- load -----------------------------------------------------------------------------------------------
def test_200_concurrent_deliveries_are_all_stored_exactly_once(settings, receiver):
    pusher = KuaiPinSimulator(count=200, seed=9, defect_rate=0)  # same signing secret; only its push side is used
    report = run_load(pusher, receiver.url_for(SOURCE), settings.hub_url, count=200, concurrency=50, source=SOURCE)
    assert report["statuses"] == {200: 200}
    assert report["stored"] == 200 and report["missing"] == 0 and report["stored_twice"] == 0


# -- configuration and the command line -------------------------------------------------------------------
def test_a_broken_webhook_profile_names_the_file_and_the_key(tmp_path):
    from connectors.kinds import load_profile

    doc = yaml.safe_load((REPO / "connectors/profiles/kuaipin.yaml").read_text(encoding="utf-8"))
    doc["signature"]["tolerance_seconds"] = 0
    path = tmp_path / "kuaipin.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert err.value.key == "signature.tolerance_seconds" and str(path) in str(err.value)
    doc["signature"]["tolerance_seconds"], doc["kind"] = 300, "push"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="kind: 'push' is not one of rest, webhook, file_drop"):
        load_profile(path)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_webhook_serve_runs_a_receiver_until_interrupted(sqlite_settings, kuaipin, stop):
    """Ctrl-C or a supervisor's SIGTERM stops it cleanly, also when its parent ignored Ctrl-C (a child
    inherits that, and Python then leaves SIGINT ignored: a full test run once hung here for it)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'include'}"}
    proc = subprocess.Popen([sys.executable, "-m", "hiresync.cli", "webhook", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = proc.stdout.readline()
        assert line.startswith("webhook kuaipin: POST http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split("POST ", 1)[1].strip()
        # Ctrl-C only once it says it is receiving: earlier, the interrupt would hit its start-up
        assert "receiving" in proc.stdout.readline()
        event = kuaipin.emit(1)[0]
        assert kuaipin.post(url, event) == 200 and kuaipin.post(url, event) == 200
        assert kuaipin.post(url, event, secret="wrong") == 401
    finally:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped: duplicate 1, rejected 1, stored 1" in out
    assert kuaipin.signing_secret not in out + err and event["data"]["candidate"]["id_number"] not in out + err
    with transaction(sqlite_settings.hub_url) as s:
        assert s.scalar(select(func.count()).select_from(InboxDelivery)) == 1


def test_slow_clients_are_cut_off_at_the_deadline_and_capped_in_number(settings, kuaipin):
    """Finding 9: a client sending a byte now and then cannot hold a thread past the request deadline,
    and connections beyond the cap get a 503 at once instead of a thread each."""
    import socket
    from urllib.parse import urlsplit

    from hiresync.ingest.webhook import WebhookReceiver

    with WebhookReceiver(settings, [SOURCE], request_deadline=1.0, max_connections=3) as r:
        u = urlsplit(r.url_for(SOURCE))
        slow = []
        for _ in range(3):  # each sends part of a request line and then trickles
            s = socket.create_connection((u.hostname, u.port), timeout=10)
            s.sendall(b"POST /webhooks/kuaipin HTTP/1.1\r\n")
            slow.append(s)
        time.sleep(0.3)
        extra = socket.create_connection((u.hostname, u.port), timeout=5)
        started = time.monotonic()
        answer = extra.recv(1024)
        assert answer.startswith(b"HTTP/1.1 503") and time.monotonic() - started < 1.0
        extra.close()
        for s in slow:  # a byte every 0.4 s: each read is quick, the total is not
            for _ in range(3):
                try:
                    s.sendall(b"X")
                except OSError:
                    break
                time.sleep(0.1)
        for s in slow:
            s.settimeout(3)
            started = time.monotonic()
            try:
                rest = s.recv(1024)
            except OSError:
                rest = b""
            assert rest == b"" or rest.startswith(b"HTTP/1.1 408")
            assert time.monotonic() - started < 2.5
            s.close()
        time.sleep(0.2)
        event = kuaipin.emit(1)[0]
        assert kuaipin.post(r.url_for(SOURCE), event) == 200  # the slots are free again
        assert r.counts["busy"] == 1
