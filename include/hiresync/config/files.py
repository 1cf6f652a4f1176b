"""Loading the YAML an integrator writes (profiles, mappings, sources) with a schema check whose
errors name the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from hiresync.errors import ConfigError


def load_yaml_checked(path: Path, schema: dict) -> dict:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        key = ".".join(str(p) for p in err.absolute_path)
        raise ConfigError(str(path), key, _plain(err))
    return doc


def _plain(err: jsonschema.ValidationError) -> str:
    """The rule broken, never the value: a password pasted into a profile would otherwise land in
    runs.error, status and Data Docs. Key names (unknown keys, required ones) are shown."""
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown key")
    if err.validator == "propertyNames":
        return f"{err.instance!r} is not a known field name"
    if err.validator in ("required", "dependentRequired", "dependencies"):
        message = err.message
    else:
        # jsonschema words its messages "<instance repr> is not ...": the value goes, the rule stays.
        message = err.message.replace(repr(err.instance), "the value")
        if isinstance(err.instance, (dict, list)) or repr(err.instance) in message:
            message = f"the value breaks the rule {err.validator!r}"
    return message if len(message) < 200 else message[:197] + "..."
