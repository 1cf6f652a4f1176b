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
    # A list of choices is always given in full (the integrator needs the right spelling);
    # jsonschema's other messages can quote whole sub-documents (oneOf failures): those are cut.
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown key")
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(str(c) for c in err.validator_value)}"
    if err.validator == "propertyNames":
        # the error is about the name; its sub-schema (usually an enum) holds the choices
        choices = err.validator_value.get("enum") if isinstance(err.validator_value, dict) else None
        name = err.instance if not isinstance(err.instance, dict) else next(
            (k for k in err.instance if choices and k not in choices), None)
        return f"{name!r} is not a known field name" + (f"; known: {', '.join(choices)}" if choices else "")
    return err.message if len(err.message) < 200 else err.message[:197] + "..."
