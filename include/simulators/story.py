"""What happens after the AI interview, for the demo and the report's tests: a hiring funnel on the
group HR system's status feed (re-interviews, offers, hires, people overriding the AI) and the
performance ratings (绩效) the EHR later drops for the hired.

The story the report should find: in the sales family (P-SA-*) the AI's 沟通 (communication) score
predicts later performance strongly; in R&D (P-RD-*) the 专业 (expertise) score barely does.
Deterministic for a seed; times never lie in the future (a candidate whose next step would come
after `now` is still in process)."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from simulators.dataset import id_check_char

# (probability, days from min, days to max) per step
PASSED = {"REINTERVIEWED": (0.92, 1, 3), "OFFER": (0.85, 2, 5), "HIRED": (0.92, 3, 9)}
OVERRIDE_SHARE = 0.12     # AI failed, a person let the candidate go on
UPHELD_SHARE = 0.10       # AI failed, a person reviewed it and agreed
OVERRIDE = {"REINTERVIEWED": (1.0, 1, 4), "OFFER": (0.45, 2, 5), "HIRED": (0.8, 3, 9)}


def latest_versions(records: list[dict]) -> list[dict]:
    """The newest version of each well-formed result (defective vendor records are skipped)."""
    out: dict[str, dict] = {}
    for r in records:
        try:
            key = r["result_id"]
            datetime.fromisoformat(r["interview"]["finished_at"])
            nid = str(r["candidate"]["id_card"])
            if not (r["evaluation"]["result"] and r["job"]["code"] and len(nid) == 18
                    and id_check_char(nid[:17]) == nid[17]):
                continue
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        out[key] = r
    return list(out.values())


def advance_funnel(records: list[dict], grouphr, vendor: str = "aiview", seed: int = 11,
                   now: datetime | None = None) -> list[dict]:
    """Publish the workflow on the simulator's status feed; returns the hired records."""
    now = now or datetime.now(timezone.utc)
    hired = []
    for r in latest_versions(records):
        rng = random.Random(f"{seed}:{r['result_id']}")
        when = datetime.fromisoformat(r["interview"]["finished_at"]).astimezone(timezone.utc)
        verdict = r["evaluation"]["result"]
        if verdict == "pass":
            steps = PASSED
        elif verdict == "fail":
            roll = rng.random()
            if roll < UPHELD_SHARE:
                _publish(grouphr, vendor, r, "REJECTED", when + timedelta(days=rng.uniform(2, 6)), now)
                continue
            if roll >= UPHELD_SHARE + OVERRIDE_SHARE:
                continue
            steps = OVERRIDE
        else:
            continue
        for stage, (p, lo, hi) in steps.items():
            when = when + timedelta(days=rng.uniform(lo, hi))
            if when > now:
                break  # still in process
            if rng.random() >= p:
                _publish(grouphr, vendor, r, "REJECTED", when, now)
                break
            _publish(grouphr, vendor, r, stage, when, now)
            if stage == "HIRED":
                hired.append(r)
    return hired


def _publish(grouphr, vendor: str, r: dict, stage: str, when: datetime, now: datetime) -> None:
    if when <= now:
        grouphr.advance(f"{vendor}:{r['result_id']}", stage, when.isoformat())


def _score(r: dict, code: str) -> float | None:
    for d in r["evaluation"].get("dimensions", []):
        if d.get("code") == code:
            full = d.get("full_score") or 100
            return float(d["score"]) / float(full) * 100
    return None


def rating_for(r: dict, rng: random.Random) -> float:
    """1..5 in steps of 0.5. Sales: communication drives it; R&D: expertise barely; others: noise."""
    code = r["job"]["code"]
    if code.startswith("P-SA-") and (s := _score(r, "communication")) is not None:
        value = 1 + 4 * (s - 40) / 60 + rng.gauss(0, 0.45)
    elif code.startswith("P-RD-") and (s := _score(r, "expertise")) is not None:
        value = 3 + 0.2 * (s - 70) / 30 + rng.gauss(0, 0.9)
    else:
        value = 3 + rng.gauss(0, 0.8)
    return min(5.0, max(1.0, round(value * 2) / 2))


def write_ratings(hired: list[dict], folder: Path, period: str = "2026-H2", seed: int = 13,
                  bad_rows: bool = True) -> Path:
    """The EHR's rating file for the hired, by resident ID; with a few rows the import must refuse."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"performance-{period}.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["resident_id", "candidate_key", "period", "rating"])
        for r in hired:
            w.writerow([r["candidate"]["id_card"], "", period, rating_for(r, rng)])
        if bad_rows and hired:
            stranger = "11010119900101001"
            w.writerow([stranger + id_check_char(stranger), "", period, 3])  # nobody HireSync knows
            w.writerow([hired[0]["candidate"]["id_card"], "", "2026-Q7", 3])  # no such period
            w.writerow([hired[-1]["candidate"]["id_card"], "", period, 9])    # out of 1..5
    return path
