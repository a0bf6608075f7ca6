"""WITH (...) options of cluster DDL: reading option values, the managed-cluster configuration,
SCHEDULE, AUTO SCALING STRATEGY and WAIT UNTIL READY / WAIT FOR.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import psycopg

from .. import mzsql as m
from ..errors import MzError
from .common import (
    DEFAULT_ON_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    IGNORED_CLUSTER_OPTIONS,
    MANAGED_OPTIONS,
    SessionLike,
    _interval,
    _validate_size,
)


def _option_text(opt: m.Option) -> str:
    value = opt.value
    if value.kind in ("string", "number", "words") and value.text is not None:
        return value.text
    raise MzError(f"invalid {opt.name.upper()} option value", sqlstate="22023")


def _option_bool(opt: m.Option) -> bool:
    if opt.value.kind == "none":
        return True
    text = _option_text(opt).lower()
    if text in ("true", "on", "t", "yes", "1"):
        return True
    if text in ("false", "off", "f", "no", "0"):
        return False
    raise MzError(f"invalid {opt.name.upper()} option value: expected boolean", sqlstate="22023")


def _option_int(opt: m.Option) -> int:
    text = _option_text(opt)
    if not re.fullmatch(r"-?\d+", text):
        raise MzError(f"invalid {opt.name.upper()} option value: {text}", sqlstate="22023")
    value = int(text)
    if value < 0:
        raise MzError(
            f"invalid {opt.name.upper()} option value: must be non-negative", sqlstate="22023"
        )
    return value


def _options_by_name(options: list[m.Option], allowed: frozenset[str]) -> dict[str, m.Option]:
    by_name: dict[str, m.Option] = {}
    for opt in options:
        if opt.name not in allowed:
            raise MzError(f"unrecognized cluster option {opt.name.upper()}", sqlstate="42601")
        if opt.name in by_name:
            raise MzError(f"{opt.name.upper()} specified more than once", sqlstate="42601")
        by_name[opt.name] = opt
    return by_name


def _replica_size(options: list[m.Option], replica: str) -> str:
    size = None
    for opt in options:
        if opt.name == "size":
            size = _option_text(opt)
        elif opt.name not in IGNORED_CLUSTER_OPTIONS | {"availability zone", "internal"}:
            raise MzError(f"unrecognized replica option {opt.name.upper()}", sqlstate="42601")
    if size is None:
        raise MzError(f"replica {replica} must specify SIZE", sqlstate="42601")
    return size


# ---------------------------------------------------------------------------------------------
# CREATE / DROP CLUSTER [REPLICA]
# ---------------------------------------------------------------------------------------------


@dataclass
class _ManagedConfig:
    size: str | None = None
    replication_factor: int | None = None
    schedule: str | None = None  # 'manual' | 'on-refresh'
    hydration_time_estimate: str | None = None
    auto_scaling: str | None = None  # jsonb text, '' to clear
    managed: bool | None = None


def _schedule(db: psycopg.Connection, opt: m.Option) -> tuple[str, str | None]:
    value = opt.value
    text = (value.text or "").lower()
    if value.kind == "words" and text == "manual":
        return "manual", None
    if value.kind == "words" and text == "on refresh":
        estimate = "0"
        for inner in value.options or []:
            if inner.name != "hydration time estimate":
                raise MzError(
                    f"unrecognized SCHEDULE option {inner.name.upper()}", sqlstate="42601"
                )
            estimate = _option_text(inner)
        return "on-refresh", _interval(db, estimate, "HYDRATION TIME ESTIMATE")
    raise MzError("Expected one of MANUAL or ON REFRESH for SCHEDULE", sqlstate="42601")


def _auto_scaling(db: psycopg.Connection, session: SessionLike, opt: m.Option) -> str:
    """AUTO SCALING STRATEGY = (ON HYDRATION (HYDRATION SIZE = .., LINGER DURATION = ..)) | NONE."""
    value = opt.value
    if value.kind == "words" and (value.text or "").lower() == "none":
        return ""
    strategy: dict[str, Any] = {}
    for inner in value.options or []:
        if inner.name != "on hydration":
            raise MzError(
                f"unrecognized AUTO SCALING STRATEGY {inner.name.upper()}", sqlstate="42601"
            )
        params: dict[str, str] = {}
        for p in inner.value.options or []:
            if p.name == "hydration size":
                params["hydration_size"] = _option_text(p)
                _validate_size(db, session, params["hydration_size"])
            elif p.name == "linger duration":
                params["linger_duration"] = _interval(db, _option_text(p), "LINGER DURATION")
            else:
                raise MzError(
                    f"unrecognized ON HYDRATION option {p.name.upper()}", sqlstate="42601"
                )
        if "hydration_size" not in params:
            raise MzError("ON HYDRATION requires HYDRATION SIZE", sqlstate="42601")
        strategy["on_hydration"] = params
    if not strategy:
        raise MzError("Expected ON HYDRATION for AUTO SCALING STRATEGY", sqlstate="42601")
    return json.dumps(strategy)


def _managed_config(
    db: psycopg.Connection, session: SessionLike, options: list[m.Option]
) -> _ManagedConfig:
    by_name = _options_by_name(options, MANAGED_OPTIONS | IGNORED_CLUSTER_OPTIONS)
    cfg = _ManagedConfig()
    if "managed" in by_name:
        cfg.managed = _option_bool(by_name["managed"])
    if "size" in by_name:
        cfg.size = _option_text(by_name["size"])
        _validate_size(db, session, cfg.size)
    if "replication factor" in by_name:
        cfg.replication_factor = _option_int(by_name["replication factor"])
    if "schedule" in by_name:
        cfg.schedule, cfg.hydration_time_estimate = _schedule(db, by_name["schedule"])
        if cfg.schedule != "manual" and cfg.replication_factor is not None:
            raise MzError(
                "REPLICATION FACTOR cannot be given together with any SCHEDULE other than MANUAL",
                sqlstate="42601",
            )
    if "auto scaling strategy" in by_name:
        cfg.auto_scaling = _auto_scaling(db, session, by_name["auto scaling strategy"])
    return cfg


def _wait_options(db: psycopg.Connection, with_options: list[m.Option]) -> tuple[str, str] | None:
    """(timeout interval, on-timeout action) of WITH (WAIT UNTIL READY (...)) / WAIT FOR."""
    for opt in with_options:
        if opt.name == "wait until ready":
            timeout, on_timeout = DEFAULT_WAIT_TIMEOUT, DEFAULT_ON_TIMEOUT
            for inner in opt.value.options or []:
                if inner.name == "timeout":
                    timeout = _interval(db, _option_text(inner), "TIMEOUT")
                elif inner.name == "on timeout":
                    on_timeout = _option_text(inner).upper()
                    if on_timeout not in ("COMMIT", "ROLLBACK"):
                        raise MzError(
                            f"invalid ON TIMEOUT value: {on_timeout}; expected COMMIT or ROLLBACK",
                            sqlstate="22023",
                        )
                else:
                    raise MzError(f"unrecognized WAIT UNTIL READY option {inner.name.upper()}")
            return timeout, on_timeout
        if opt.name == "wait for":
            return _interval(db, _option_text(opt), "WAIT FOR"), "COMMIT"
        raise MzError(f"unrecognized ALTER CLUSTER option {opt.name.upper()}", sqlstate="42601")
    return None
