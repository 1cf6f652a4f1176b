"""The errors a user sees. Each message names what and where; none carries personal data."""

from __future__ import annotations


class HireSyncError(Exception):
    """Base: stops a run with one clear message (the CLI prints it without a traceback)."""


class ConfigError(HireSyncError):
    """A profile, mapping or sources file that is broken: names the file, the key and the problem."""

    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key or '(top level)'}: {problem}")


class KeyMaterialError(HireSyncError):
    """A missing or wrong encryption key; raised before any data is touched."""
