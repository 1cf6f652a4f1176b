"""Bodies the load hands to the relay beside it (hiresync.delivery.beside): each is the body the relay
would have rendered from the stored payload, it is used instead of a second rendering, and the
checks a rendering makes still hold (a purged payload's row is refused, never sent)."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

from sqlalchemy import select, update

from hiresync import jsonfast
from hiresync.delivery.render import RenderError, render
from hiresync.hub.models import Candidate, InterviewResult, Outbox, RawPayload
from hiresync.hub.store import transaction
from hiresync.pipeline import load as load_module
from hiresync.pipeline.runner import run_source
from tests.test_relay_beside import beside, pause_third_batch_until, outbox


class _Recorder:
    """Stands for the relay beside the load: keeps what the load hands over."""

    def __init__(self, keys):
        self.keys, self.bodies, self.outcome = keys, {}, {"delivered": {}, "errors": {}}

    def hand(self, bodies: dict) -> None:
        assert not set(bodies) & set(self.bodies)  # each row once, after the batch that wrote it
        self.bodies.update(jsonfast.loads(jsonfast.dumpb(bodies)))  # as they cross the pipe


def _references(s):
    return s.execute(select(Outbox.id, Outbox.idempotency_key, Outbox.result_id, Outbox.result_version,
                            Outbox.raw_payload_id, Outbox.mapping_fingerprint)
                     .where(Outbox.kind == "upsert").order_by(Outbox.id)).all()


def test_each_handed_body_is_the_body_the_relay_would_render(settings, aiview, monkeypatch):
    settings = dataclasses.replace(beside(settings, monkeypatch), relay_beside_rows=10**9)  # no real helper
    recorders = []

    @contextmanager
    def recording(settings, keys, targets, rows):
        recorders.append(_Recorder(keys))
        yield recorders[-1]

    monkeypatch.setattr(load_module, "beside_when", recording)
    checked = []

    def after(step: str, _result: dict) -> None:
        if step != "load":
            return
        handed = recorders[0].bodies
        with transaction(settings.hub_url) as s:
            rows = _references(s)
            rendered = render(s, recorders[0].keys, rows)
            assert {r.idempotency_key for r in rows} == set(handed)  # every row the load wrote
            assert {r.idempotency_key: rendered[r.id] for r in rows} == handed
            # A handed body is used as it is, with the candidate the hub holds now ...
            first, second = rows[0], rows[1]
            marked = {first.idempotency_key: {**handed[first.idempotency_key],
                                              "candidate": {"candidate_key": "stale"}, "marker": "handed"}}
            got = render(s, recorders[0].keys, [first], marked)[first.id]
            assert got["marker"] == "handed"
            assert got["candidate"]["candidate_key"] == s.scalar(
                select(Candidate.candidate_key).join(InterviewResult, InterviewResult.candidate_id == Candidate.id)
                .where(InterviewResult.id == first.result_id))
            # ... unless its payload is gone (retention, erasure): refused, as a rendering would be.
            s.execute(update(RawPayload).where(RawPayload.id == second.raw_payload_id).values(payload_enc=None))
            refused = render(s, recorders[0].keys, [second], {second.idempotency_key: handed[second.idempotency_key]})
            assert isinstance(refused[second.id], RenderError) and "purged" in str(refused[second.id])
            s.rollback()
        checked.append(len(rows))

    summary = run_source("aiview", settings, on_step=after)
    assert summary["status"] == "success" and checked and checked[0] >= 300 - len(aiview.defects)
    assert len(recorders[0].bodies) == checked[0]


def test_the_relay_beside_the_load_sends_the_handed_bodies(settings, aiview, monkeypatch):
    settings = beside(settings, monkeypatch)
    pause_third_batch_until(monkeypatch, lambda: outbox(settings, Outbox.status == "sent") > 0)
    outcomes = []
    real = load_module.merge_relayed
    monkeypatch.setattr(load_module, "merge_relayed", lambda staging, outcome: outcomes.append(outcome) or real(
        staging, outcome))
    summary = run_source("aiview", settings)
    assert summary["status"] == "success"
    assert 0 < outcomes[0]["handed"] <= outcomes[0]["delivered"]["ehr"]


def _message(bodies: dict[str, dict]) -> bytes:
    import zstandard

    from hiresync.delivery.beside import pack

    return pack(list(bodies), b"\n".join(jsonfast.dumpb(b) for b in bodies.values()), zstandard.ZstdCompressor())


def test_the_helper_keeps_handed_bodies_compressed_within_its_limit():
    """Handed keeps the bodies as the compressed message they came in, gives each once, lets a
    message go when every body in it is taken, past its limit keeps no more (the relay renders those
    rows itself), and keeps no body of a row the relay already rendered: a relay that falls behind
    does not grow beside the load, nor fill its room with bodies no one takes."""
    from hiresync.delivery.beside import Handed

    body = {"candidate": {"full_name": "王芳"}, "result": {"result_key": "aiview:1", "overall_score": 85.0},
            "comment": "表达清晰，逻辑严谨。" * 20}
    first = _message({f"k{i}": body | {"key": f"k{i}"} for i in range(10)})
    assert len(first) < len(jsonfast.dumpb(body)) * 3  # ten bodies, compressed together
    handed = Handed(limit=len(first) + 100)
    handed.add(first)
    handed.add(_message({"late1": body, "late2": body}))  # beyond the limit: not kept
    assert handed.take(["k3", "k9", "late1", "unknown"]) == {"k3": body | {"key": "k3"}, "k9": body | {"key": "k9"}}
    assert handed.take(["k3"]) == {} and handed.given == 2
    assert handed.held == len(first)  # eight of its bodies still to be taken
    later = _message({"later": body})
    handed.add(later)  # no room yet
    assert handed.take(["later"]) == {}
    assert len(handed.take([f"k{i}" for i in range(10)])) == 8 and handed.held == 0  # all taken: let go
    handed.add(later)  # asked for before it came: the relay rendered that row itself
    assert handed.held == 0
    again = _message({"again": body})
    handed.add(again)
    assert handed.held == len(again) and handed.take(["again"])["again"]["result"]["overall_score"] == 85.0
    assert handed.given == 11 and handed.held == 0


def test_the_helper_forgets_the_oldest_missed_keys_first():
    """Keys the relay asked for before their bodies came are remembered up to MISSED, the oldest
    forgotten first: a body that comes for a forgotten key is kept (and taken later), one for a key
    still remembered is not."""
    from hiresync.delivery.beside import Handed

    def message(*keys):
        return _message({k: {"n": 1} for k in keys})

    handed = Handed()
    handed.MISSED = 3
    assert handed.take(["a", "b", "c", "d", "e"]) == {}  # a and b forgotten; c, d and e remembered
    handed.add(message("a", "b", "c", "e"))
    assert handed.take(["a", "b"]) == {"a": {"n": 1}, "b": {"n": 1}}
    assert handed.take(["f", "g"]) == {}  # remembered: d, f, g (c and e came, so they were let go)
    assert handed.take(["h"]) == {}  # d, the oldest, is forgotten
    handed.add(message("d", "f"))
    assert handed.take(["d", "f"]) == {"d": {"n": 1}}
