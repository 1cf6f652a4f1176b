"""Loading the YAML an integrator writes (profiles, mappings, sources) with a schema check whose
errors name the file, the key and the problem."""

from __future__ import annotations

import os
import stat
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
    runs.error, status and Data Docs. Key names (unknown keys, required ones) and lists of choices
    are shown in full: the integrator needs the right spelling."""
    if err.validator == "additionalProperties":
        return err.message.replace("Additional properties are not allowed", "unknown key")
    if err.validator == "enum" and "propertyNames" in err.schema_path:  # a key's name, not a value
        return f"{err.instance!r} is not a known field name; known: {', '.join(str(c) for c in err.validator_value)}"
    if err.validator == "enum":
        return f"the value is not one of {', '.join(str(c) for c in err.validator_value)}"
    if err.validator == "propertyNames":
        # the error is about the name; its sub-schema (usually an enum) holds the choices
        choices = err.validator_value.get("enum") if isinstance(err.validator_value, dict) else None
        name = err.instance if not isinstance(err.instance, dict) else next(
            (k for k in err.instance if choices and k not in choices), None)
        return f"{name!r} is not a known field name" + (f"; known: {', '.join(choices)}" if choices else "")
    if err.validator in ("required", "dependentRequired", "dependencies"):
        message = err.message
    else:
        # jsonschema words its messages "<instance repr> is not ...": the value goes, the rule stays.
        message = err.message.replace(repr(err.instance), "the value")
        if isinstance(err.instance, (dict, list)) or repr(err.instance) in message:
            message = f"the value breaks the rule {err.validator!r}"
    return message if len(message) < 200 else message[:197] + "..."


# -- files and folders that hold personal data or keys: the owner's only ---------------------------------
def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700 (folders that exist already are left as they are:
    a hub under /tmp must not chmod /tmp)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        os.chmod(d, 0o700)  # mkdir's mode is masked by the umask
    return path


def create_private(out: Path) -> int:
    """Open a *new* file only its owner can read and write (0600 whatever the umask) and return its fd:
    never an existing file (it keeps its mode, others may hold it open) and never through a symlink."""
    from hiresync.errors import HireSyncError

    out = Path(out)
    if out.is_symlink() or out.exists():
        raise HireSyncError(f"{out} exists: this file is written new only (choose another name)")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise HireSyncError(f"{out} exists: this file is written new only (choose another name)") from None
    os.fchmod(fd, 0o600)
    return fd


def tighten(path: Path, mode: int) -> None:
    """chmod an existing file or folder of ours to `mode` (one left open by an older version)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if st.st_uid == os.getuid() and not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) & ~mode:
        os.chmod(path, mode)


def private_file(path: Path) -> Path:
    """Make sure `path` exists and only its owner can read it (created empty as 0600, or tightened)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        tighten(path, 0o600)
    return path
