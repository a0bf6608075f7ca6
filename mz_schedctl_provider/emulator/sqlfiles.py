"""The emulator's SQL, kept in ``emulator/sql/*.sql`` (shipped as package data) so it reads,
diffs and lints as SQL rather than as Python strings."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    """The text of ``sql/<name>``, read once."""
    return resources.files(__package__).joinpath("sql").joinpath(name).read_text(encoding="utf-8")
