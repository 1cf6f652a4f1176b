"""Per-recipient data policy (PIPL Art. 5-6, minimisation): what each target's audience may see.

policy.yaml `recipients:` names, per audience, each personal field as `plain`, `masked` (the
display masks of hiresync.privacy.pii), `hashed` (a keyed HMAC, stable per recipient, so the recipient can
match records without learning the value) or `dropped` (the key is not sent at all). A target
profile names its audience (`recipient:`). Without a `recipients:` section the EHR (the archive HR
runs on) gets everything plain; any other recipient without a policy is a configuration error:
personal data never goes out by default.

Keys per purpose: a `hashed` value is an HMAC under a key derived for that recipient *and* that
field (equal values of two fields, or of two recipients, do not join), derived from the keyring's
first version, so it does not change when `hiresync keys rotate` adds a version (see
Keyring.pseudonym). `candidate_key: pseudonym` (optional, default `plain`) gives the recipient its
own stable key for the candidate instead of the hub's, in records and in erase requests alike, so
two recipients cannot join their records on it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError
from hiresync.privacy.pii import Keyring, mask_email, mask_mobile, mask_name, mask_national_id, mask_url
from hiresync.config.settings import Settings

ACTIONS = ("plain", "masked", "hashed", "dropped")
CANDIDATE_KEY = ("plain", "pseudonym")
# field -> (section of the delivery payload, key in it, mask)
FIELDS = {
    "full_name": ("candidate", "full_name", mask_name),
    "national_id": ("candidate", "national_id", mask_national_id),
    "mobile": ("candidate", "mobile", mask_mobile),
    "email": ("candidate", "email", mask_email),
    "video_url": ("result", "video_url", mask_url),
    "report_url": ("result", "report_url", mask_url),  # a bearer link to the AI report, like the video's
}
_SCHEMA = {
    "type": "object",
    "properties": {
        "recipients": {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "object", "additionalProperties": False, "required": list(FIELDS),
                "properties": {**{f: {"enum": list(ACTIONS)} for f in FIELDS},
                               "candidate_key": {"enum": list(CANDIDATE_KEY)}},
            },
        },
    },
}
_ARCHIVE_DEFAULT = {"ehr": {f: "plain" for f in FIELDS}}


@dataclass(frozen=True)
class RecipientPolicy:
    recipient: str
    fields: dict[str, str]
    candidate_key: str = "plain"

    def candidate_key_for(self, candidate_key: str, keys: Keyring) -> str:
        if self.candidate_key == "plain":
            return candidate_key
        return keys.pseudonym(f"recipient:{self.recipient}:candidate_key", candidate_key, length=32)

    def apply(self, payload: dict, keys: Keyring) -> dict:
        """A copy of a delivery payload with each personal field as this recipient may see it."""
        if all(a == "plain" for a in self.fields.values()) and self.candidate_key == "plain":
            return payload
        out = copy.deepcopy(payload)
        if self.candidate_key != "plain":
            if isinstance(out.get("candidate_key"), str):  # an erase request
                out["candidate_key"] = self.candidate_key_for(out["candidate_key"], keys)
            cand = out.get("candidate")
            if isinstance(cand, dict) and isinstance(cand.get("candidate_key"), str):
                cand["candidate_key"] = self.candidate_key_for(cand["candidate_key"], keys)
        for field, action in self.fields.items():
            section, key, mask = FIELDS[field]
            part = out.get(section)
            if not isinstance(part, dict) or key not in part or action == "plain":
                continue
            value = part[key]
            if action == "dropped":
                del part[key]
            elif value is None:
                continue
            elif action == "masked":
                part[key] = mask(str(value))
            else:  # hashed: a key per recipient and field, stable across rotation
                part[key] = keys.pseudonym(f"recipient:{self.recipient}:{field}", str(value), length=64)
        return out


def load_policy(settings: Settings, recipient: str) -> RecipientPolicy:
    doc = load_yaml_checked(settings.policy_file, _SCHEMA)
    recipients = doc.get("recipients") or _ARCHIVE_DEFAULT
    if recipient not in recipients:
        raise ConfigError(str(settings.policy_file), f"recipients.{recipient}",
                          "no data policy for this recipient (each personal field: " + " | ".join(ACTIONS) + ")")
    fields = dict(recipients[recipient])
    return RecipientPolicy(recipient, {f: fields[f] for f in FIELDS}, fields.get("candidate_key", "plain"))
