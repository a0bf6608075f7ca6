"""Versioned JSON documents passed between the stages (XCom) and their JSON Schemas.

signals (signals task -> decide), plan (decide -> apply, persist, CLI ``--json``) and
apply_result (apply -> persist). Each carries ``schema_version`` and ``kind``; loaders check
both and every field's type, raising ContractError with the path of the fault. No secrets:
only catalog facts, configs, states and decisions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib import resources
from typing import TypeVar, cast

from .facts import iso, parse_ts
from .models import (
    ACTION_KINDS,
    ACTION_STATUSES,
    OUTCOMES,
    Action,
    ActionResult,
    Alter,
    ApplyResult,
    Cluster,
    ClusterPlan,
    ClusterState,
    Finding,
    JsonObject,
    JsonValue,
    Plan,
    RecentAction,
    Reconfiguration,
    Replica,
    Signals,
    Size,
    StateRow,
    StrategyRow,
)
from .reasons import ALL_CODES, ReasonCode
from .state import state_from_payload, state_to_payload

SCHEMA_VERSION = 1
# The plan document is at version 2: reason codes beside the prose (actions' "codes",
# findings' "code"), additive, so a version 1 plan still loads (without codes).
PLAN_SCHEMA_VERSION = 2
PLAN_SCHEMA_VERSIONS = (1, 2)
SCHEMA_NAMES = ("signals", "plan", "apply_result")
T = TypeVar("T")


class ContractError(ValueError):
    """A document that does not follow its contract (wrong version, kind, or field)."""


def load_schema(name: str) -> JsonObject:
    """The shipped JSON Schema (draft 2020-12) of one document kind."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r} (known: {', '.join(SCHEMA_NAMES)})")
    text = resources.files(__package__).joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    return cast(JsonObject, json.loads(text))


# ---- reading helpers: each names the path of a faulty field -------------------------------


def _obj(value: JsonValue, path: str) -> JsonObject:
    if not isinstance(value, dict):
        raise ContractError(f"{path}: expected an object")
    return value


def _field(doc: JsonObject, key: str, path: str) -> JsonValue:
    if key not in doc:
        raise ContractError(f"{path}.{key}: missing")
    return doc[key]


def _str(doc: JsonObject, key: str, path: str) -> str:
    value = _field(doc, key, path)
    if not isinstance(value, str):
        raise ContractError(f"{path}.{key}: expected a string")
    return value


def _opt_str(doc: JsonObject, key: str, path: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ContractError(f"{path}.{key}: expected a string or null")
    return value


def _bool(doc: JsonObject, key: str, path: str) -> bool:
    value = _field(doc, key, path)
    if not isinstance(value, bool):
        raise ContractError(f"{path}.{key}: expected true or false")
    return value


def _int(doc: JsonObject, key: str, path: str, default: int | None = None) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{path}.{key}: expected an integer")
    return value


def _opt_int(doc: JsonObject, key: str, path: str) -> int | None:
    return None if doc.get(key) is None else _int(doc, key, path)


def _float(doc: JsonObject, key: str, path: str) -> float:
    value = _field(doc, key, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(f"{path}.{key}: expected a number")
    return float(value)


def _ts(doc: JsonObject, key: str, path: str) -> datetime:
    value = _opt_ts(doc, key, path)
    if value is None:
        raise ContractError(f"{path}.{key}: expected a timestamp")
    return value


def _opt_ts(doc: JsonObject, key: str, path: str) -> datetime | None:
    raw = doc.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str) or parse_ts(raw) is None:
        raise ContractError(f"{path}.{key}: expected an ISO 8601 timestamp")
    if datetime.fromisoformat(raw.replace("Z", "+00:00")).tzinfo is None:
        raise ContractError(f"{path}.{key}: timestamp without a time zone")
    return parse_ts(raw)


def _list(
    doc: JsonObject, key: str, path: str, item: Callable[[JsonValue, str], T]
) -> tuple[T, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ContractError(f"{path}.{key}: expected a list")
    return tuple(item(v, f"{path}.{key}[{i}]") for i, v in enumerate(value))


def _strs(doc: JsonObject, key: str, path: str) -> tuple[str, ...]:
    def one(v: JsonValue, p: str) -> str:
        if not isinstance(v, str):
            raise ContractError(f"{p}: expected a string")
        return v

    return _list(doc, key, path, one)


def _header(doc: JsonValue, kind: str, versions: tuple[int, ...] = (SCHEMA_VERSION,)) -> JsonObject:
    obj = _obj(doc, kind)
    if obj.get("kind") != kind:
        raise ContractError(f"{kind}.kind: expected {kind!r}, got {obj.get('kind')!r}")
    version = obj.get("schema_version")
    if isinstance(version, bool) or version not in versions:
        expected = " or ".join(map(str, versions))
        raise ContractError(f"{kind}.schema_version: expected {expected}, got {version!r}")
    return obj


def _opt_iso(ts: datetime | None) -> str | None:
    return iso(ts) if ts is not None else None


# ---- signals ----------------------------------------------------------------------------


def signals_to_json(signals: Signals) -> JsonObject:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "signals",
        "now": iso(signals.now),
        "logging_visible": signals.logging_visible,
        "controller_cluster": signals.controller_cluster,
        "crash_window_s": signals.crash_window_s,
        "sizes": [
            {
                "name": s.name,
                "credits_per_hour": s.credits_per_hour,
                "memory_bytes": s.memory_bytes,
                "allowed": s.allowed,
            }
            for s in signals.sizes
        ],
        "clusters": [_cluster_to_json(c) for c in signals.clusters],
        "strategies": [
            {
                "cluster_id": r.cluster_id,
                "strategy_type": r.strategy_type,
                "config": r.config,
                "updated_at": _opt_iso(r.updated_at),
            }
            for r in signals.strategies
        ],
        "states": [
            {
                "cluster_id": r.cluster_id,
                "state_version": r.state_version,
                "payload": r.payload,
                "updated_at": _opt_iso(r.updated_at),
            }
            for r in signals.states
        ],
        "recent_actions": [
            {"cluster_id": a.cluster_id, "at": iso(a.at), "strategy": a.strategy}
            for a in signals.recent_actions
        ],
    }


def _cluster_to_json(c: Cluster) -> JsonObject:
    replicas: list[JsonValue] = [
        {
            "id": r.id,
            "name": r.name,
            "size": r.size,
            "created_at": _opt_iso(r.created_at),
            "status": r.status,
            "status_reason": r.status_reason,
            "hydrated_objects": r.hydrated_objects,
            "oom_count": r.oom_count,
            "crash_count": r.crash_count,
        }
        for r in c.replicas
    ]
    out: JsonObject = {
        "id": c.id,
        "name": c.name,
        "managed": c.managed,
        "size": c.size,
        "replication_factor": c.replication_factor,
        "schedule_type": c.schedule_type,
        "auto_scaling": c.auto_scaling,
        "is_system": c.is_system,
        "replicas": replicas,
        "indexes": c.indexes,
        "materialized_views": c.materialized_views,
        "sources": c.sources,
        "sinks": c.sinks,
        "hydration_objects": c.hydration_objects,
        "last_activity": _opt_iso(c.last_activity),
    }
    if c.reconfiguration is not None:  # optional (compact; documents without it still load)
        rc = c.reconfiguration
        out["reconfiguration"] = {
            "status": rc.status,
            "deadline": _opt_iso(rc.deadline),
            "on_timeout": rc.on_timeout,
            "target_size": rc.target_size,
            "target_replication_factor": rc.target_replication_factor,
        }
    return out


def signals_from_json(doc: JsonValue) -> Signals:
    d = _header(doc, "signals")
    p = "signals"
    return Signals(
        now=_ts(d, "now", p),
        logging_visible=_bool(d, "logging_visible", p),
        controller_cluster=_opt_str(d, "controller_cluster", p),
        crash_window_s=_float(d, "crash_window_s", p),
        sizes=_list(d, "sizes", p, _size_from),
        clusters=_list(d, "clusters", p, _cluster_from),
        strategies=_list(d, "strategies", p, _strategy_row_from),
        states=_list(d, "states", p, _state_row_from),
        recent_actions=_list(d, "recent_actions", p, _recent_from),
    )


def _size_from(v: JsonValue, p: str) -> Size:
    d = _obj(v, p)
    return Size(
        name=_str(d, "name", p),
        credits_per_hour=_float(d, "credits_per_hour", p),
        memory_bytes=_int(d, "memory_bytes", p),
        allowed=_bool(d, "allowed", p),
    )


def _replica_from(v: JsonValue, p: str) -> Replica:
    d = _obj(v, p)
    return Replica(
        id=_str(d, "id", p),
        name=_str(d, "name", p),
        size=_opt_str(d, "size", p),
        created_at=_opt_ts(d, "created_at", p),
        status=_opt_str(d, "status", p),
        status_reason=_opt_str(d, "status_reason", p),
        hydrated_objects=_int(d, "hydrated_objects", p, 0),
        oom_count=_int(d, "oom_count", p, 0),
        crash_count=_int(d, "crash_count", p, 0),
    )


def _cluster_from(v: JsonValue, p: str) -> Cluster:
    d = _obj(v, p)
    return Cluster(
        id=_str(d, "id", p),
        name=_str(d, "name", p),
        managed=_bool(d, "managed", p),
        size=_opt_str(d, "size", p),
        replication_factor=_opt_int(d, "replication_factor", p),
        schedule_type=_opt_str(d, "schedule_type", p),
        auto_scaling=_bool(d, "auto_scaling", p),
        is_system=_bool(d, "is_system", p),
        replicas=_list(d, "replicas", p, _replica_from),
        indexes=_int(d, "indexes", p, 0),
        materialized_views=_int(d, "materialized_views", p, 0),
        sources=_int(d, "sources", p, 0),
        sinks=_int(d, "sinks", p, 0),
        hydration_objects=_opt_int(d, "hydration_objects", p),
        last_activity=_opt_ts(d, "last_activity", p),
        reconfiguration=_reconfiguration_from(d.get("reconfiguration"), f"{p}.reconfiguration"),
    )


def _reconfiguration_from(v: JsonValue, p: str) -> Reconfiguration | None:
    if v is None:
        return None
    d = _obj(v, p)
    return Reconfiguration(
        status=_str(d, "status", p),
        deadline=_opt_ts(d, "deadline", p),
        on_timeout=_opt_str(d, "on_timeout", p),
        target_size=_opt_str(d, "target_size", p),
        target_replication_factor=_opt_int(d, "target_replication_factor", p),
    )


def _strategy_row_from(v: JsonValue, p: str) -> StrategyRow:
    d = _obj(v, p)
    return StrategyRow(
        cluster_id=_str(d, "cluster_id", p),
        strategy_type=_str(d, "strategy_type", p),
        config=_field(d, "config", p),
        updated_at=_opt_ts(d, "updated_at", p),
    )


def _state_row_from(v: JsonValue, p: str) -> StateRow:
    d = _obj(v, p)
    return StateRow(
        cluster_id=_str(d, "cluster_id", p),
        state_version=_int(d, "state_version", p),
        payload=_field(d, "payload", p),
        updated_at=_opt_ts(d, "updated_at", p),
    )


def _recent_from(v: JsonValue, p: str) -> RecentAction:
    d = _obj(v, p)
    return RecentAction(
        cluster_id=_str(d, "cluster_id", p), at=_ts(d, "at", p), strategy=_opt_str(d, "strategy", p)
    )


# ---- plan -------------------------------------------------------------------------------


def plan_to_json(plan: Plan) -> JsonObject:
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "kind": "plan",
        "cycle_id": plan.cycle_id,
        "now": iso(plan.now),
        "dry_run": plan.dry_run,
        "experimental": plan.experimental,
        "clusters": [_cluster_plan_to_json(c) for c in plan.clusters],
    }


def _cluster_plan_to_json(c: ClusterPlan) -> JsonObject:
    actions: list[JsonValue] = [_action_to_json(a) for a in c.actions]
    findings: list[JsonValue] = [_finding_to_json(f) for f in c.findings]
    errors: list[JsonValue] = list(c.errors)
    notes: list[JsonValue] = list(c.notes)
    return {
        "cluster_id": c.cluster_id,
        "cluster_name": c.cluster_name,
        "credits_per_hour_before": c.credits_per_hour_before,
        "credits_per_hour_after": c.credits_per_hour_after,
        "empty_on_purpose": c.empty_on_purpose,
        "errors": errors,
        "findings": findings,
        "notes": notes,
        "actions": actions,
        "prev_state": state_to_payload(c.prev_state),
        # null: unchanged (keeps the document small).
        "state": None if c.state == c.prev_state else state_to_payload(c.state),
    }


def _action_to_json(a: Action) -> JsonObject:
    reasons: list[JsonValue] = list(a.reasons)
    codes: list[JsonValue] = list(a.codes)
    out: JsonObject = {
        "id": a.id,
        "cluster_id": a.cluster_id,
        "cluster_name": a.cluster_name,
        "kind": a.kind,
        "replica_name": a.replica_name,
        "replica_id": a.replica_id,
        "size": a.size,
        "strategy": a.strategy,
        "status": a.status,
        "reasons": reasons,
        "credits_per_hour_before": a.credits_per_hour_before,
        "credits_per_hour_after": a.credits_per_hour_after,
        "sql": a.sql,
        "codes": codes,
    }
    if a.alter is not None:  # alter_cluster only (older documents have no such key)
        alter: JsonObject = {}
        if a.alter.size is not None:
            alter["size"] = a.alter.size
        if a.alter.replication_factor is not None:
            alter["replication_factor"] = a.alter.replication_factor
        if a.alter.wait:
            alter["wait"] = True
        if a.alter.timeout_s is not None:
            alter["timeout_s"] = a.alter.timeout_s
        out["alter"] = alter
    return out


def _finding_to_json(f: Finding) -> JsonObject:
    return {
        "kind": f.kind,
        "severity": f.severity,
        "message": f.message,
        "strategy": f.strategy,
        "details": dict(f.details),
        "code": f.code,
    }


def plan_from_json(doc: JsonValue) -> Plan:
    d = _header(doc, "plan", PLAN_SCHEMA_VERSIONS)
    p = "plan"
    return Plan(
        cycle_id=_str(d, "cycle_id", p),
        now=_ts(d, "now", p),
        dry_run=_bool(d, "dry_run", p),
        experimental=_bool(d, "experimental", p),
        clusters=_list(d, "clusters", p, _cluster_plan_from),
    )


def _cluster_plan_from(v: JsonValue, p: str) -> ClusterPlan:
    d = _obj(v, p)
    prev = state_from_payload(_obj(_field(d, "prev_state", p), f"{p}.prev_state"))
    raw_state = d.get("state")
    state: ClusterState = (
        prev if raw_state is None else state_from_payload(_obj(raw_state, f"{p}.state"))
    )
    return ClusterPlan(
        cluster_id=_str(d, "cluster_id", p),
        cluster_name=_str(d, "cluster_name", p),
        actions=_list(d, "actions", p, _action_from),
        credits_per_hour_before=_float(d, "credits_per_hour_before", p),
        credits_per_hour_after=_float(d, "credits_per_hour_after", p),
        errors=_strs(d, "errors", p),
        findings=_list(d, "findings", p, _finding_from),
        notes=_strs(d, "notes", p),
        empty_on_purpose=_bool(d, "empty_on_purpose", p),
        prev_state=prev,
        state=state,
    )


def _choice(d: JsonObject, key: str, p: str, allowed: tuple[T, ...]) -> T:
    value = _field(d, key, p)
    for option in allowed:
        if value == option:
            return option
    raise ContractError(f"{p}.{key}: expected one of {', '.join(map(str, allowed))}")


def _action_from(v: JsonValue, p: str) -> Action:
    d = _obj(v, p)
    return Action(
        id=_str(d, "id", p),
        cluster_id=_str(d, "cluster_id", p),
        cluster_name=_str(d, "cluster_name", p),
        kind=_choice(d, "kind", p, ACTION_KINDS),
        replica_name=_str(d, "replica_name", p),
        replica_id=_opt_str(d, "replica_id", p),
        size=_opt_str(d, "size", p),
        strategy=_str(d, "strategy", p),
        status=_choice(d, "status", p, ACTION_STATUSES),
        reasons=_strs(d, "reasons", p),
        credits_per_hour_before=_float(d, "credits_per_hour_before", p),
        credits_per_hour_after=_float(d, "credits_per_hour_after", p),
        sql=_opt_str(d, "sql", p),
        alter=_alter_from(d.get("alter"), f"{p}.alter"),
        codes=_codes(d, "codes", p),
    )


def _alter_from(v: JsonValue, p: str) -> Alter | None:
    if v is None:
        return None
    d = _obj(v, p)
    wait = d.get("wait", False)
    if not isinstance(wait, bool):
        raise ContractError(f"{p}.wait: expected true or false")
    timeout = d.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise ContractError(f"{p}.timeout_s: expected a number")
    return Alter(
        size=_opt_str(d, "size", p),
        replication_factor=_opt_int(d, "replication_factor", p),
        wait=wait,
        timeout_s=None if timeout is None else float(timeout),
    )


def _finding_from(v: JsonValue, p: str) -> Finding:
    d = _obj(v, p)
    details: Mapping[str, JsonValue] = _obj(d.get("details", {}), f"{p}.details")
    return Finding(
        kind=_str(d, "kind", p),
        severity=_choice(d, "severity", p, ("info", "warning", "error")),
        message=_str(d, "message", p),
        strategy=_opt_str(d, "strategy", p),
        details=details,
        code=None if d.get("code") is None else _code(_field(d, "code", p), f"{p}.code"),
    )


def _code(v: JsonValue, p: str) -> ReasonCode:
    for code in ALL_CODES:
        if v == code:
            return code
    raise ContractError(f"{p}: expected a reason code (reasons.py), got {v!r}")


def _codes(d: JsonObject, key: str, p: str) -> tuple[ReasonCode, ...]:
    """Absent in version 1 plans: no codes."""
    return _list(d, key, p, _code)


# ---- apply result -----------------------------------------------------------------------


def apply_result_to_json(result: ApplyResult) -> JsonObject:
    results: list[JsonValue] = [
        {
            "action_id": r.action_id,
            "cluster_id": r.cluster_id,
            "outcome": r.outcome,
            "error": r.error,
        }
        for r in result.results
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "apply_result",
        "cycle_id": result.cycle_id,
        "executed": result.executed,
        "reason": result.reason,
        "results": results,
    }


def apply_result_from_json(doc: JsonValue) -> ApplyResult:
    d = _header(doc, "apply_result")
    p = "apply_result"

    def one(v: JsonValue, q: str) -> ActionResult:
        r = _obj(v, q)
        return ActionResult(
            action_id=_str(r, "action_id", q),
            cluster_id=_str(r, "cluster_id", q),
            outcome=_choice(r, "outcome", q, OUTCOMES),
            error=_opt_str(r, "error", q),
        )

    return ApplyResult(
        cycle_id=_str(d, "cycle_id", p),
        executed=_bool(d, "executed", p),
        reason=_opt_str(d, "reason", p),
        results=_list(d, "results", p, one),
    )
