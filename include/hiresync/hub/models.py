"""The hub database: HireSync's own tables (never Airflow's metadata DB).

Personal data lives only in the *_enc columns (AES-GCM, see hiresync.privacy.pii; stored as bytes,
see Ciphertext); *_bidx columns are keyed blind indexes for matching, *_masked the display form.
Hashes, idempotency keys and blind indexes are SHA-256 digests, stored as their 32 bytes (Digest).
Times are stored as naive UTC because MySQL and SQLite keep no zone; UTCDateTime makes them aware
again on read.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, DateTime, ForeignKey, Index, LargeBinary, Numeric, SmallInteger, String, Text,
                        UniqueConstraint, func, literal)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def sqlite_datetime_text(naive: datetime) -> str:
    """The text SQLAlchemy's DATETIME stores on SQLite, "YYYY-MM-DD HH:MM:SS.ffffff", which it builds
    by %-formatting a dict per value; isoformat writes the same (a test holds them equal) in about a
    third of the time, and a stored result carries about a dozen timestamps (hub and EHR)."""
    return naive.isoformat(" ", "microseconds")


class UTCDateTime(TypeDecorator):
    # MySQL/MariaDB DATETIME keeps whole seconds unless asked for more: two runs started within one
    # second would tie, and "the last run" would be a coin toss.
    impl = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def bind_processor(self, dialect):
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_naive_utc = self.process_bind_param

        def process(value):
            return None if value is None else sqlite_datetime_text(to_naive_utc(value, dialect))
        return process

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Ciphertext(TypeDecorator):
    """An encrypted value: in Python the keyring's token text ("v<key version>:<base64>"), in the
    database its bytes ("v<key version>:" then nonce and ciphertext). Base64 would add a third to
    every stored payload and personal value (migration 0016 converted the text columns)."""

    # SQLite keeps the bytes in a column declared TEXT (migration 0016 says why).
    impl = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb").with_variant(Text(), "sqlite")
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator):
        def under_key(self, version: int):
            """The values encrypted under key `version` (what a key rotation still has to redo)."""
            prefix = f"v{version}:".encode()
            return func.substr(self.expr, 1, len(prefix)) == literal(prefix, LargeBinary())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        head, sep, body = value.partition(":")
        try:
            if not (sep and head[:1] == "v" and head[1:].isdigit()):
                raise ValueError
            return head.encode() + b":" + base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error):
            # Never the value itself: a column of this type holds personal data.
            raise ValueError("not an encryption token (\"v<n>:<base64>\"); encrypt the value with the keyring") from None

    def process_result_value(self, value, dialect):
        if value is None or isinstance(value, str):
            # A token as text: on SQLite, written by a process still running the code from before
            # migration 0016 (a webhook receiver, say); the keyring reads it all the same.
            return value
        head, _, body = bytes(value).partition(b":")  # the key version never holds a colon
        return f"{head.decode()}:{base64.b64encode(body).decode()}"


class Digest(TypeDecorator):
    """A SHA-256 digest or HMAC (payload and content hashes, idempotency keys, blind indexes): in
    Python its 64 hex characters, in the database its 32 bytes. Hex would double the column and every
    index holding it, about 400 bytes per stored result (migration 0017 converted the text columns)."""

    # SQLite keeps the bytes in the column's declared VARCHAR(64), as Ciphertext does (0016 says why).
    impl = LargeBinary().with_variant(mysql.VARBINARY(32), "mysql", "mariadb").with_variant(String(64), "sqlite")
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        try:
            digest = bytes.fromhex(value)
        except (TypeError, ValueError):
            digest = b""
        if len(digest) != 32:
            # Never the value itself: a caller that passes the wrong thing may pass personal data.
            raise ValueError("not a SHA-256 digest (64 hex characters); hash or blind-index the value first")
        return digest

    def process_result_value(self, value, dialect):
        if value is None or isinstance(value, str):
            return value  # hex text on SQLite, from a process still running the code before 0017
        return bytes(value).hex()


Score = Numeric(9, 2, asdecimal=False)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), str: String(255)}


class Run(Base):
    """One source run and its accounting: pulled = inserted + updated + unchanged + quarantined."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))  # extracting, loaded, success, failed
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    pulled_since: Mapped[datetime | None]
    watermark_after: Mapped[datetime | None]
    mapping_version: Mapped[str | None] = mapped_column(String(32))
    pulled: Mapped[int] = mapped_column(default=0)
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    quarantined: Mapped[int] = mapped_column(default=0)
    delivered: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Great Expectations outcome of the batch without values: per expectation, counts only.
    validation_summary: Mapped[dict | None] = mapped_column(JSON)
    # While a load is under way: the batches committed so far, their rows and outcome counts
    # (hiresync.pipeline.load); a retried load goes on from there. Cleared when the run is loaded.
    load_progress: Mapped[dict | None] = mapped_column(JSON)


class SourceLock(Base):
    """Who is syncing a source now: a lease, so a second sync of the same source stops at once and
    a holder that died is recognised (its process is gone, or its lease ran out)."""

    __tablename__ = "source_locks"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(160))
    holder: Mapped[str] = mapped_column(String(120))  # "host:pid" for a CLI run, "airflow:<host>" for a DAG run
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class SourceState(Base):
    """Operational state of a source beyond its runs: frozen after schema drift, paused by hand."""

    __tablename__ = "source_state"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))  # active, frozen, paused
    reason: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MappingVersion(Base):
    """Each mapping spec that produced records, kept verbatim: how any field was derived, later."""

    __tablename__ = "mapping_versions"
    mapping: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(16), primary_key=True)
    spec_text: Mapped[str] = mapped_column(Text)
    first_run_id: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Watermark(Base):
    __tablename__ = "watermarks"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor_value: Mapped[datetime]
    run_id: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# How candidates' *_bidx columns were computed. 1: one key per key version for every field (hubs
# before migration 0014); 2: a key of its own per field (pii.Keyring.blind_index). A row written by
# code that does not know this column gets the server default 1; privacy.keys re-indexes it.
BLIND_INDEX_SCHEME = 2


class Candidate(Base):
    __tablename__ = "candidates"
    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_key: Mapped[str] = mapped_column(String(36), unique=True)
    key_version: Mapped[int]
    full_name_enc: Mapped[str] = mapped_column(Ciphertext())
    full_name_masked: Mapped[str] = mapped_column(String(64))
    national_id_enc: Mapped[str] = mapped_column(Ciphertext())
    national_id_bidx: Mapped[str] = mapped_column(Digest(), unique=True)
    national_id_masked: Mapped[str] = mapped_column(String(32))
    mobile_enc: Mapped[str | None] = mapped_column(Ciphertext())
    mobile_bidx: Mapped[str | None] = mapped_column(Digest(), index=True)
    mobile_masked: Mapped[str | None] = mapped_column(String(32))
    email_enc: Mapped[str | None] = mapped_column(Ciphertext())
    email_bidx: Mapped[str | None] = mapped_column(Digest(), index=True)
    email_masked: Mapped[str | None] = mapped_column(String(255))
    bidx_scheme: Mapped[int] = mapped_column(default=BLIND_INDEX_SCHEME, server_default="1", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CandidateVendorId(Base):
    __tablename__ = "candidate_vendor_ids"
    vendor: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor_candidate_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)


class InterviewResult(Base):
    __tablename__ = "interview_results"
    __table_args__ = (UniqueConstraint("vendor", "vendor_result_id", name="uq_result_vendor_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    vendor: Mapped[str] = mapped_column(String(64))
    vendor_result_id: Mapped[str] = mapped_column(String(128))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    position_code: Mapped[str | None] = mapped_column(String(64))
    position_name: Mapped[str | None]
    department: Mapped[str | None]
    business_unit: Mapped[str | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    overall_score: Mapped[float | None] = mapped_column(Score)
    raw_score: Mapped[float | None] = mapped_column(Score)
    score_scale: Mapped[float | None] = mapped_column(Score)
    ai_comment: Mapped[str | None] = mapped_column(Text)
    recommendation: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    video_url_enc: Mapped[str | None] = mapped_column(Ciphertext())
    video_expires_at: Mapped[datetime | None]
    report_url: Mapped[str | None] = mapped_column(Text)
    interviewer: Mapped[str | None]
    source_updated_at: Mapped[datetime]
    mapping_version: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(Digest())
    version: Mapped[int] = mapped_column(default=1)
    first_run_id: Mapped[str] = mapped_column(String(160))
    last_run_id: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DimensionScore(Base):
    """A result's dimension scores, keyed by the result and their place in the vendor's list (seq
    0, 1, ...): one index serves every lookup, which is by result (migration 0022)."""

    __tablename__ = "dimension_scores"
    result_id: Mapped[int] = mapped_column(ForeignKey("interview_results.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None]
    score: Mapped[float | None] = mapped_column(Score)
    raw_score: Mapped[float | None] = mapped_column(Score)
    scale: Mapped[float | None] = mapped_column(Score)
    comment: Mapped[str | None] = mapped_column(Text)


class RawPayload(Base):
    """Every distinct payload a vendor sent, encrypted: what replay and trace start from."""

    __tablename__ = "raw_payloads"
    # the load looks payloads up by (source, vendor result id, hash): this key's index
    __table_args__ = (UniqueConstraint("source", "vendor_result_id", "payload_hash", name="uq_raw_payload"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    vendor_result_id: Mapped[str] = mapped_column(String(128))
    payload_hash: Mapped[str] = mapped_column(Digest())
    payload_enc: Mapped[str | None] = mapped_column(Ciphertext())  # None once purged by retention or erasure
    run_id: Mapped[str] = mapped_column(String(160))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[datetime | None]


class PayloadDictionary(Base):
    """The zstd dictionary a source's raw payloads are compressed with (hiresync.privacy.payloads):
    trained once, on the interview content of the source's first 1,000 to 2,000 payloads (no value
    that identifies a person), and kept as long as any payload needs it."""

    __tablename__ = "payload_dictionaries"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64), unique=True)
    dict_id: Mapped[int] = mapped_column(BigInteger, unique=True)  # zstd's own id, named in each frame
    content: Mapped[bytes] = mapped_column(LargeBinary)
    samples: Mapped[int]  # how many payloads it was trained on
    run_id: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Quarantine(Base):
    """A payload held back, with why. One row per payload: seen again, it is counted, not repeated."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_source_status", "source", "status"),
                      Index("ix_quarantine_raw_payload", "raw_payload_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(160), index=True)
    source: Mapped[str] = mapped_column(String(64))
    vendor_result_id: Mapped[str] = mapped_column(String(128))
    raw_payload_id: Mapped[int] = mapped_column(ForeignKey("raw_payloads.id"))
    reason_code: Mapped[str] = mapped_column(String(40))
    problems: Mapped[list] = mapped_column(JSON)  # [{field, rule, value (masked)}]
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, resolved
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_run_id: Mapped[str | None] = mapped_column(String(160))
    resolved_at: Mapped[datetime | None]
    seen_count: Mapped[int] = mapped_column(default=1, server_default="1")
    last_seen_at: Mapped[datetime | None]


class RecordLineage(Base):
    """What happened to each pulled payload in each run; written in the load transaction."""

    __tablename__ = "record_lineage"
    __table_args__ = (Index("ix_lineage_record", "source", "vendor_result_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(String(160), index=True)
    source: Mapped[str] = mapped_column(String(64))
    vendor_result_id: Mapped[str] = mapped_column(String(128))
    payload_hash: Mapped[str] = mapped_column(Digest())
    raw_payload_id: Mapped[int] = mapped_column(ForeignKey("raw_payloads.id"))
    result_id: Mapped[int | None] = mapped_column(ForeignKey("interview_results.id"))
    mapping_version: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(20))  # inserted, updated, unchanged, stale, quarantined
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outbox(Base):
    """Work for the delivery relay: a reference to the result version to deliver (rendered by the
    relay, hiresync.delivery.render), or, for erase requests and workflow events, an encrypted body."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("target", "idempotency_key", name="uq_outbox_idempotency"),  # also the load's lookup
        Index("ix_outbox_pending", "target", "status", "id"),
        # the relay's candidate-order check and erasure find a result's rows (migration 0018 says why)
        Index("ix_outbox_result", "result_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="upsert", server_default="upsert")  # or erase
    result_id: Mapped[int | None] = mapped_column(ForeignKey("interview_results.id"))  # None: erased
    result_version: Mapped[int]
    idempotency_key: Mapped[str] = mapped_column(Digest())
    # An upsert names the raw payload its body is rendered from (one encrypted copy of each payload);
    # erase requests and workflow events, which are not results, carry their own encrypted body.
    raw_payload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_payloads.id", name="fk_outbox_raw_payload"))
    mapping_fingerprint: Mapped[str | None] = mapped_column(String(12))  # the spec that renders the body
    payload_enc: Mapped[str | None] = mapped_column(Ciphertext())
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, sent, dead
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]  # a relay's lease on SQLite, where SKIP LOCKED does not exist
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    response_status: Mapped[int | None]
    target_ref: Mapped[str | None] = mapped_column(String(200))  # the target's own id for the record
    run_id: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class AuditEvent(Base):
    """The audit trail of what was done to personal data: purges, erasures, exports (tombstones).

    It names records by non-personal references (candidate key, result key, row ids), never by
    their content."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_subject", "subject_ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # retention_purge, subject_export, subject_erase
    subject_ref: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdentityReview(Base):
    """A result whose person could not be resolved safely: same ID with another name, or one phone
    and email under two IDs. A person decides; the quarantined result is then replayed."""

    __tablename__ = "identity_reviews"
    __table_args__ = (Index("ix_identity_review_record", "source", "vendor_result_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # NAME_MISMATCH, ID_MISMATCH
    source: Mapped[str] = mapped_column(String(64))
    vendor_result_id: Mapped[str] = mapped_column(String(128))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))  # the candidate it collided with
    details: Mapped[dict] = mapped_column(JSON)  # masked values only
    status: Mapped[str] = mapped_column(String(20), default="open")  # open, resolved
    resolution: Mapped[str | None] = mapped_column(String(20))  # same_person, different_person
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboxDelivery(Base):
    """A pushed delivery (vendor webhook), stored before the receiver answers 2xx; drained by the
    source's sync run like a page from an API. The delivery id makes repeats harmless."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("source", "delivery_id", name="uq_inbox_delivery"),
                      Index("ix_inbox_pending", "source", "status", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    delivery_id: Mapped[str] = mapped_column(String(128))
    payload_enc: Mapped[str] = mapped_column(Ciphertext())
    status: Mapped[str] = mapped_column(String(12), default="new")  # new, drained
    run_id: Mapped[str | None] = mapped_column(String(160))  # the run that drained it
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class FileDrop(Base):
    """A file read from a drop folder (CSV, Excel), once: its content hash is the identity."""

    __tablename__ = "file_drops"
    __table_args__ = (UniqueConstraint("source", "content_hash", name="uq_file_drop_content"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(Digest())
    rows: Mapped[int] = mapped_column(default=0)
    run_id: Mapped[str] = mapped_column(String(160))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusEvent(Base):
    """The hiring workflow after the AI interview (AI passed -> re-interview -> offer -> hired), as
    the group HR system or a business department reports it; the newest event is the current stage."""

    __tablename__ = "status_events"
    __table_args__ = (UniqueConstraint("origin", "external_id", name="uq_status_event_origin"),
                      Index("ix_status_event_result", "result_id", "occurred_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int | None] = mapped_column(ForeignKey("interview_results.id"))
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"))
    stage: Mapped[str] = mapped_column(String(32))  # ai_passed, reinterview_requested, reinterviewed, offer, hired, rejected
    origin: Mapped[str] = mapped_column(String(32))  # grouphr, hiresync, dept_sheet
    external_id: Mapped[str] = mapped_column(String(128))  # the origin's id for the event: repeats are ignored
    detail: Mapped[dict | None] = mapped_column(JSON)  # no personal data
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class KeyVersionCheck(Base):
    """Which key each key version of this hub is, by fingerprint: a wrong key file is refused
    before it can write unreadable data or miss every blind-index match."""

    __tablename__ = "key_versions"
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


class PerformanceRating(Base):
    """A performance rating (绩效) of a hired candidate for one period, from the EHR's file drop.

    Minimised: the person is the candidate row matched by blind index (no ID number is stored
    here); the rating itself is personal data and is stored encrypted. Its own retention
    (policy.yaml retention.performance_ratings_days)."""

    __tablename__ = "performance_ratings"
    __table_args__ = (UniqueConstraint("candidate_id", "period", name="uq_performance_rating"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    period: Mapped[str] = mapped_column(String(16))  # 2026, 2026-H1, 2026-Q3 or 2026-07
    rating_enc: Mapped[str] = mapped_column(Ciphertext())
    file_drop_id: Mapped[int | None] = mapped_column(ForeignKey("file_drops.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
