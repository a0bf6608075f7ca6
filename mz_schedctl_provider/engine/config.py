"""Validation of strategy rows: every wrong value gets an error naming cluster, strategy, key.

Keys are declared per strategy (``KeySpec``); the common keys are accepted on every row.
Sizes are checked against the sizes Materialize lists (Signals.sizes), never a fixed list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from .models import JsonValue, Size, StrategyRow

KeyKind = Literal["size", "duration", "flag", "replica_name", "count", "credits", "scope", "custom"]
# A strategy's own check of a structured value: None when valid, else (key path, why), the
# path naming the faulty part (e.g. "windows[2].start").
KeyCheck = Callable[[JsonValue, Mapping[str, Size]], "tuple[str, str] | None"]

RESERVED_PREFIXES = ("mz_", "pg_")
# Bounds against typos like 18000000000 (huge numbers are errors, not silent overflows).
MAX_DURATION_S = 10 * 365 * 24 * 3600.0
MAX_COUNT = 1000
MAX_CREDITS = 1_000_000.0
# Materialize identifiers are at most 255 bytes; keep room for a "_<n>" suffix.
MAX_REPLICA_NAME_BYTES = 240


class ConfigError(ValueError):
    """An invalid strategy row: names the cluster, the strategy and the key."""

    def __init__(
        self, *, cluster_id: str, cluster_name: str, strategy: str, key: str | None, message: str
    ) -> None:
        self.cluster_id = cluster_id
        self.cluster_name = cluster_name
        self.strategy = strategy
        self.key = key
        self.message = message
        where = f"key {key!r}: " if key else ""
        super().__init__(
            f"invalid config for cluster {cluster_name!r} ({cluster_id}), "
            f"strategy {strategy!r}: {where}{message}"
        )


@dataclass(frozen=True)
class KeySpec:
    """How one config key is checked, and its default."""

    kind: KeyKind
    required: bool = False
    default: JsonValue = None
    # Runs after the kind's check ("custom": the only check); defaults are never checked.
    check: KeyCheck | None = None


def check_resize_timeout(value: JsonValue, sizes: Mapping[str, Size]) -> tuple[str, str] | None:
    # The "duration" kind already refused non-numbers and negatives.
    if isinstance(value, int | float) and value < 1:
        return "resize_timeout_s", "must be at least 1 second (a graceful resize needs time)"
    return None


COMMON_KEYS: Mapping[str, KeySpec] = {
    "cooldown_s": KeySpec("duration", default=0),
    "enabled": KeySpec("flag", default=True),
    "shadow": KeySpec("flag", default=False),
    "replica_scope": KeySpec("scope", default="all"),
    "allow_downtime": KeySpec("flag", default=False),
    # Managed clusters: TIMEOUT of the graceful reconfiguration a resize starts (rolled back
    # after it).
    "resize_timeout_s": KeySpec("duration", default=3600, check=check_resize_timeout),
}


@dataclass(frozen=True)
class Values:
    """Validated values of one row (defaults filled in), with typed getters."""

    values: Mapping[str, JsonValue]

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if isinstance(value, str) else None

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:  # validation guarantees required keys; this guards misuse
            raise KeyError(key)
        return value

    def number(self, key: str) -> float | None:
        value = self.values.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def required_number(self, key: str) -> float:
        value = self.number(key)
        if value is None:
            raise KeyError(key)
        return value

    def flag(self, key: str) -> bool:
        return self.values.get(key) is True


@dataclass(frozen=True)
class CommonConfig:
    """The keys every strategy row accepts."""

    cooldown_s: float = 0.0
    enabled: bool = True
    shadow: bool = False
    replica_scope: Literal["all", "owned"] = "all"
    allow_downtime: bool = False
    resize_timeout_s: float = 3600.0


def parse_common(values: Values) -> CommonConfig:
    scope: Literal["all", "owned"] = "owned" if values.text("replica_scope") == "owned" else "all"
    return CommonConfig(
        cooldown_s=values.number("cooldown_s") or 0.0,
        enabled=values.flag("enabled"),
        shadow=values.flag("shadow"),
        replica_scope=scope,
        allow_downtime=values.flag("allow_downtime"),
        resize_timeout_s=values.number("resize_timeout_s") or 3600.0,
    )


def config_object(raw: JsonValue) -> tuple[dict[str, JsonValue] | None, str]:
    """The row's config as an object (JSONB arrives as a dict, a text column as a string)."""
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return None, f"config is not valid JSON ({exc.msg})"
    if not isinstance(value, dict):
        return None, f"config must be a JSON object, not {type(value).__name__}"
    return value, "ok"


def check_value(*, spec: KeySpec, value: JsonValue, sizes: Mapping[str, Size]) -> tuple[bool, str]:
    """(valid, why not) for one value against its spec."""
    if spec.kind == "custom":
        return True, ""  # the spec's own check decides
    if spec.kind == "flag":
        return (True, "") if isinstance(value, bool) else (False, "must be true or false")
    if spec.kind == "scope":
        ok = value in ("all", "owned")
        return (True, "") if ok else (False, 'must be "all" or "owned"')
    if spec.kind == "size":
        return check_size(value=value, sizes=sizes)
    if spec.kind == "replica_name":
        return check_replica_name(value)
    return check_number(kind=spec.kind, value=value)


def check_number(*, kind: KeyKind, value: JsonValue) -> tuple[bool, str]:
    # bool is an int subclass in Python: true must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False, f"must be a number, not {json.dumps(value)}"
    # Only floats can be inf or NaN; a huge JSON integer (Python int of any size) would make
    # math.isfinite raise OverflowError and, before this, crash the whole run.
    if isinstance(value, float) and not math.isfinite(value):
        return False, "must be a finite number"
    if value < 0:
        return False, f"must not be negative (got {value})"
    if kind == "count":
        if isinstance(value, float) and not value.is_integer():
            return False, f"must be a whole number (got {value})"
        if value > MAX_COUNT:
            return False, f"is too large (got {value}, at most {MAX_COUNT})"
        if value < 1:
            return False, "must be at least 1"
    if kind == "duration" and value > MAX_DURATION_S:
        return False, f"is too large (got {value} seconds, at most {int(MAX_DURATION_S)})"
    if kind == "credits" and value > MAX_CREDITS:
        return False, f"is too large (got {value}, at most {int(MAX_CREDITS)})"
    return True, ""


def check_size(*, value: JsonValue, sizes: Mapping[str, Size]) -> tuple[bool, str]:
    if not isinstance(value, str):
        return False, f"must be a size name (a string), not {json.dumps(value)}"
    size = sizes.get(value)
    known = ", ".join(s.name for s in sizes.values() if s.allowed)
    if size is None:
        return False, f"unknown size {value!r} (Materialize lists: {known})"
    if not size.allowed:
        return False, f"size {value!r} is not allowed on this instance (allowed: {known})"
    return True, ""


def check_replica_name(value: JsonValue) -> tuple[bool, str]:
    if not isinstance(value, str) or not value:
        return False, "must be a non-empty string"
    if value.lower().startswith(RESERVED_PREFIXES):
        return False, f"replica name {value!r} is reserved (prefixes mz_ and pg_)"
    if "\x00" in value:
        return False, "must not contain a NUL character"
    if len(value.encode()) > MAX_REPLICA_NAME_BYTES:
        return False, f"is too long (at most {MAX_REPLICA_NAME_BYTES} bytes)"
    return True, ""


def validate_row(
    *,
    row: StrategyRow,
    cluster_name: str,
    keys: Mapping[str, KeySpec],
    sizes: Mapping[str, Size],
) -> Values:
    """Validated values of one row, defaults filled in; raises ConfigError on the first fault."""

    def fail(key: str | None, message: str) -> ConfigError:
        return ConfigError(
            cluster_id=row.cluster_id,
            cluster_name=cluster_name,
            strategy=row.strategy_type,
            key=key,
            message=message,
        )

    obj, why = config_object(row.config)
    if obj is None:
        raise fail(None, why)
    specs = {**COMMON_KEYS, **keys}
    for key in sorted(obj):
        if key not in specs:
            raise fail(key, f"unknown key (accepted: {', '.join(sorted(specs))})")
    values: dict[str, JsonValue] = {}
    for key, spec in specs.items():
        if key not in obj:
            if spec.required:
                raise fail(key, "is required")
            values[key] = spec.default
            continue
        ok, why = check_value(spec=spec, value=obj[key], sizes=sizes)
        if not ok:
            raise fail(key, why)
        fault = spec.check(obj[key], sizes) if spec.check is not None else None
        if fault is not None:
            raise fail(*fault)
        values[key] = obj[key]
    return Values(values)


def row_enabled(row: StrategyRow) -> bool:
    """Whether a row is switched on; a disabled row is not validated further.

    A row whose ``enabled`` is not a boolean counts as enabled so that validation reports it.
    """
    obj, _ = config_object(row.config)
    return obj is None or obj.get("enabled", True) is not False
