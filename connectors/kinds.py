"""One loader for every profile: the `kind:` key picks the class (rest, webhook, file_drop)."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import yaml

from connectors.files.profile import FileDropProfile
from connectors.rest.profile import RestProfile
from connectors.webhook.profile import WebhookProfile
from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError

Profile = Union[RestProfile, WebhookProfile, FileDropProfile]
KINDS: dict[str, type] = {"rest": RestProfile, "webhook": WebhookProfile, "file_drop": FileDropProfile}


def load_profile(path: Path) -> Profile:
    # Read the kind first (the file's own schema is checked by its class); a YAML or file error
    # surfaces through the same checked loader, naming the file.
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        load_yaml_checked(path, {})
        raise
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in KINDS:
        raise ConfigError(str(path), "kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    return KINDS[kind].load(path)

