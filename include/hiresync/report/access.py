"""The role matrix of the HR report (policy.yaml `report_access:`): who sees what.

| role       | sees                                                           |
|------------|----------------------------------------------------------------|
| hr         | every panel, every department, candidates' names               |
| department | only its own department's positions; names masked; no data health |
| it         | only the operational panels (data health); no results, no personal data |
"""

from __future__ import annotations

from dataclasses import dataclass

from hiresync.config.files import load_yaml_checked
from hiresync.config.settings import Settings
from hiresync.errors import HireSyncError

ROLES = ("hr", "department", "it")
_SCHEMA = {
    "type": "object",
    "properties": {
        "report_access": {
            "type": "object", "additionalProperties": False, "required": ["users"],
            "properties": {"weekly_user": {"type": "string"}, "link": {"type": "string", "pattern": "^https?://"},
                           "users": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": False, "required": ["role"],
                "properties": {"role": {"enum": list(ROLES)}, "department": {"type": "string", "minLength": 1}},
                "if": {"properties": {"role": {"const": "department"}}}, "then": {"required": ["department"]},
            }}},
        },
    },
}


class AccessDenied(HireSyncError):
    """The user may not see what was asked for (HTTP 403 in the UI)."""


@dataclass(frozen=True)
class Viewer:
    user: str
    role: str
    department: str | None = None

    @property
    def sees_names(self) -> bool:
        return self.role == "hr"

    @property
    def sees_results(self) -> bool:
        return self.role in ("hr", "department")

    def department_scope(self, asked: str | None) -> str | None:
        """The department the report is limited to; a department user asking for another: denied."""
        if self.role == "department":
            if asked is not None and asked != self.department:
                raise AccessDenied(f"user {self.user!r} may see only the department of its own role")
            return self.department
        if self.role == "it" and asked is not None:
            raise AccessDenied(f"user {self.user!r} (IT) sees operational panels only, not a department's results")
        return asked


def viewer_for(settings: Settings, user: str) -> Viewer:
    doc = load_yaml_checked(settings.policy_file, _SCHEMA) if settings.policy_file.exists() else {}
    entry = (doc.get("report_access") or {}).get("users", {}).get(user)
    if entry is None:
        raise AccessDenied(f"user {user!r} has no report access (policy.yaml report_access.users)")
    return Viewer(user, entry["role"], entry.get("department"))


def weekly_settings(settings: Settings) -> tuple[str | None, str | None]:
    """(the user whose view the weekly report is written for, the link sent with it)."""
    doc = load_yaml_checked(settings.policy_file, _SCHEMA) if settings.policy_file.exists() else {}
    section = doc.get("report_access") or {}
    return section.get("weekly_user"), section.get("link")
