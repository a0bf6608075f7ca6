"""A flag's truth, defined once: the kill switch (the Airflow Variable and the CLI's
environment variable), the dry_run Param and boolean connection extras all read through
:func:`parse_flag`; each caller decides what a value that is neither true nor false means."""

from __future__ import annotations

PAUSED_VARIABLE = "mz_schedctl_paused"
PAUSED_ENV = "MZ_SCHEDCTL_PAUSED"

TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off", "none", "null"})


def parse_flag(value: object) -> bool | None:
    """True or False for a true or false word (any case, spaces ignored) or a bool/number;
    None when not set (None or empty). Anything else raises ValueError."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    text = str(value).strip().lower()
    if not text:
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{str(value)!r} is neither a true nor a false word")


def flag(value: object, *, name: str, default: bool = False) -> bool:
    """A setting's flag: unset is the default; a value that is neither true nor false is an
    error naming the setting."""
    try:
        parsed = parse_flag(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc} (use true or false)") from None
    return default if parsed is None else parsed


def kill_switch_on(value: object) -> bool:
    """The kill switch: unset, empty or a false word is off; a true word is on, and so is
    anything else (a typo errs on the side of doing nothing)."""
    try:
        return parse_flag(value) is True
    except ValueError:
        return True
