"""`hiresync explain`: how a result's pass/fail status and score were derived (PIPL Art. 24).

Built from the same audit trail as trace: the payload that produced the stored result, the
mapping spec of that version, the stored scores. HireSync applies no threshold of its own: the
status is the vendor's automated decision, translated by the mapping's value map. No human review
is recorded yet, and the explanation says so rather than implying one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.records import get_path
from hiresync.hub.models import RecordLineage
from hiresync.hub.store import transaction
from hiresync.audit.rules import MappingRules
from hiresync.audit.trace import PRODUCED, RecordNotFound, decrypt_payload, find_mapping, resolve, stored_result
from hiresync.privacy.pii import Keyring
from hiresync.config.settings import Settings

STATUS_LABELS = {"passed": "通过", "failed": "未通过", "pending_review": "待复核", "incomplete": "未完成"}
NO_THRESHOLD = ("HireSync applies no score threshold: the status is the vendor's automated decision, "
                "translated by the mapping's value map.")
NO_REVIEW = ("No human review of this result is recorded in HireSync. Under PIPL Art. 24 the candidate may "
             "ask for an explanation and refuse a decision made solely by automated means: route such a request "
             "to HR for a person to review it.")


def explain(settings: Settings, keys: Keyring, query: str) -> dict:
    with transaction(settings.hub_url) as s:
        refs = [r for r in resolve(s, query) if r.result is not None]
        if not refs:
            raise RecordNotFound(f"{query!r} names no stored result: every version was quarantined "
                                 "(see `hiresync trace` for the reasons)")
        return {"query": query, "results": [_explain_one(s, keys, ref) for ref in refs]}


def _explain_one(s, keys: Keyring, ref) -> dict:
    result = ref.result
    stored = stored_result(s, keys, result)
    producing = s.scalars(select(RecordLineage).where(
        RecordLineage.result_id == result.id, RecordLineage.outcome.in_(PRODUCED))
        .order_by(RecordLineage.id.desc()).limit(1)).first()
    payload = decrypt_payload(s, keys, producing) if producing else None
    mapping = find_mapping(s, result.mapping_version, ref, producing)
    rules = MappingRules.from_yaml(mapping.spec_text) if mapping else None

    def rule_of(name: str) -> dict | None:
        rule = rules.fields.get(name) if rules else None
        if rule is None:
            return None
        doc: dict[str, Any] = {"vendor_path": rules.vendor_path(rule), "rule": rule.describe()}
        if payload is not None and rule.path is not None:
            doc["vendor_value"] = get_path(payload, rule.path)  # status, score, recommendation: not personal data
            if isinstance(rule.scale, str):
                doc["vendor_scale"] = get_path(payload, rule.scale)
        if rule.values:
            doc["value_map"] = rule.values
        return doc

    raw, scale, score = stored["raw_score"], stored["score_scale"], stored["overall_score"]
    return {
        "result_key": f"{result.vendor}:{result.vendor_result_id}",
        "vendor": result.vendor,
        "interviewer": result.interviewer,
        "status": {"value": result.status, "label": STATUS_LABELS.get(result.status, result.status),
                   "derived_from": rule_of("status"), "thresholds": [], "basis": NO_THRESHOLD},
        "recommendation": {"value": result.recommendation, "derived_from": rule_of("recommendation")},
        "score": {"normalised": score, "raw": raw, "scale": scale,
                  "formula": f"{raw} / {scale} x 100 = {score}" if raw is not None and scale else None,
                  "derived_from": rule_of("overall_score")},
        "dimensions": [d | {"formula": f"{d['raw_score']} / {d['scale']} x 100 = {d['score']}"
                            if d["raw_score"] is not None and d["scale"] else None}
                       for d in stored["dimensions"]],
        "dimension_rule": rule_of("dimensions.score"),
        "mapping": ({"mapping": mapping.mapping, "version": mapping.version, "fingerprint": mapping.fingerprint}
                    if mapping else None),
        "evidence": ({"run_id": producing.run_id, "payload_hash": producing.payload_hash,
                      "raw_payload_id": producing.raw_payload_id} if producing else None),
        "human_review": {"reviewed": False, "note": NO_REVIEW},
    }


def render_text(doc: dict) -> str:
    out: list[str] = []
    for r in doc["results"]:
        st, sc = r["status"], r["score"]
        out += [f"结果 result {r['result_key']}  (供应商 vendor {r['vendor']}, 面试官 interviewer {r['interviewer']})", ""]
        sd = st["derived_from"] or {}
        out.append(f"状态 status: {st['value']} ({st['label']})")
        if sd:
            out.append(f"  vendor field {sd['vendor_path']} = {sd.get('vendor_value')!r} -> {st['value']!r} "
                       f"by the mapping's value map ({sd['rule']})")
        out.append(f"  阈值 thresholds: none. {st['basis']}")
        rd = r["recommendation"]["derived_from"]
        if rd:
            out.append(f"推荐 recommendation: {r['recommendation']['value']} (vendor {rd['vendor_path']} = "
                       f"{rd.get('vendor_value')!r})")
        out += ["", f"总分 overall score: {sc['normalised']} of 100"]
        if sc["derived_from"]:
            d = sc["derived_from"]
            out.append(f"  vendor {d['vendor_path']} = {d.get('vendor_value')!r}"
                       + (f", scale {d.get('vendor_scale')!r}" if "vendor_scale" in d else "")
                       + f": {sc['formula']}")
        out.append("维度得分 dimension scores:")
        out += [f"  {d['code']:<16} {d['name'] or '':<10} {d['formula'] or d['score']}" for d in r["dimensions"]] or ["  none"]
        if r["mapping"]:
            m = r["mapping"]
            out.append(f"\n映射 mapping {m['mapping']} {m['version']} (fingerprint {m['fingerprint']})")
        if r["evidence"]:
            e = r["evidence"]
            out.append(f"依据 evidence: payload {e['payload_hash'][:16]}… pulled by run {e['run_id']}")
        out += ["", f"人工复核 human review: {'yes' if r['human_review']['reviewed'] else 'none recorded'}. "
                    f"{r['human_review']['note']}", ""]
    return "\n".join(out).rstrip() + "\n"
