"""Per-recipient data policy (PIPL Art. 5-6, minimisation): what each target's audience may see.

policy.yaml `recipients:` names, per audience, each personal field as `plain`, `masked` (the
display masks of hiresync.privacy.pii), `hashed` (a keyed HMAC, stable per recipient, so the recipient can
match records without learning the value) or `dropped` (the key is not sent at all). A target
profile names its audience (`recipient:`). Without a `recipients:` section the EHR (the archive HR
runs on) gets everything plain; any other recipient without a policy is a configuration error:
personal data never goes out by default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError
from hiresync.privacy.pii import Keyring, mask_email, mask_mobile, mask_name, mask_national_id, mask_url
from hiresync.config.settings import Settings

ACTIONS = ("plain", "masked", "hashed", "dropped")
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
                "properties": {f: {"enum": list(ACTIONS)} for f in FIELDS},
            },
        },
    },
}
_ARCHIVE_DEFAULT = {"ehr": {f: "plain" for f in FIELDS}}


@dataclass(frozen=True)
class RecipientPolicy:
    recipient: str
    fields: dict[str, str]

    def apply(self, payload: dict, keys: Keyring) -> dict:
        """A copy of a delivery payload with each personal field as this recipient may see it."""
        if all(a == "plain" for a in self.fields.values()):
            return payload
        out = copy.deepcopy(payload)
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
            else:  # hashed: keyed and per recipient, so two recipients' hashes cannot be joined
                part[key] = keys.blind_index(f"recipient:{self.recipient}:{field}:{value}")
        return out


def load_policy(settings: Settings, recipient: str) -> RecipientPolicy:
    doc = load_yaml_checked(settings.policy_file, _SCHEMA)
    recipients = doc.get("recipients") or _ARCHIVE_DEFAULT
    if recipient not in recipients:
        raise ConfigError(str(settings.policy_file), f"recipients.{recipient}",
                          "no data policy for this recipient (each personal field: " + " | ".join(ACTIONS) + ")")
    return RecipientPolicy(recipient, dict(recipients[recipient]))
