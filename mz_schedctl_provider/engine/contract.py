"""Versioned JSON documents passed between the stages (XCom) and their JSON Schemas.

signals (signals task -> decide), plan (decide -> apply, persist, CLI ``--json``) and
apply_result (apply -> persist). Each carries ``schema_version`` and ``kind``; loaders check
both and every field's type, raising ContractError with the path of the fault. No secrets:
only catalog facts, configs, states and decisions.

The documents are the dataclasses of models.py, written, read and described by the generic
codec (codec.py) from their type hints: a field added there is in the documents and in the
schemas without a converter. RULES says what the types cannot (key order, compact omissions,
bounds, descriptions); the shipped schemas/*.json are generated from both
(``python -m mz_schedctl_provider.engine.schemagen``) and a test fails when they differ.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, TypeVar, cast

from .codec import Codec, ContractError, Rules
from .models import (
    Action,
    ActionResult,
    Alter,
    ApplyResult,
    Cluster,
    ClusterPlan,
    Finding,
    JsonObject,
    JsonValue,
    Plan,
    Reconfiguration,
    Replica,
    Signals,
    Size,
    StrategyRow,
)
from .state import STATE_RULES

SCHEMA_VERSION = 1
# The plan document is at version 2: reason codes beside the prose (actions' "codes",
# findings' "code"), additive, so a version 1 plan still loads (without codes).
PLAN_SCHEMA_VERSION = 2
PLAN_SCHEMA_VERSIONS = (1, 2)
# Per document kind: the version written first, then every version still read.
VERSIONS: dict[str, tuple[int, ...]] = {
    "signals": (SCHEMA_VERSION,),
    "plan": (PLAN_SCHEMA_VERSION, *[v for v in PLAN_SCHEMA_VERSIONS if v != PLAN_SCHEMA_VERSION]),
    "apply_result": (SCHEMA_VERSION,),
}
SCHEMA_NAMES = ("signals", "plan", "apply_result")
SCHEMA_ID = "https://github.com/mz-schedctl-provider/schemas/{name}.schema.json"
T = TypeVar("T")

__all__ = [
    "CODEC",
    "DOCUMENTS",
    "PLAN_SCHEMA_VERSION",
    "PLAN_SCHEMA_VERSIONS",
    "RULES",
    "SCHEMA_NAMES",
    "SCHEMA_VERSION",
    "VERSIONS",
    "ContractError",
    "apply_result_from_json",
    "apply_result_to_json",
    "document_schema",
    "load_schema",
    "plan_from_json",
    "plan_to_json",
    "signals_from_json",
    "signals_to_json",
]

_COUNT: JsonObject = {"minimum": 0}

# What the type hints cannot say. Key orders list only the keys that come before the
# declaration order (the documents' historical layout); new fields follow at the end.
RULES: dict[type[Any], Rules] = {
    **STATE_RULES,
    Signals: Rules(
        schema={
            "logging_visible": {
                "description": "statement logging can see activity (max sample rate > 0)"
            },
            "crash_window_s": _COUNT,
            "log_flush_lag_s": _COUNT,
        },
        # cluster_names: only with rows for unknown clusters; log_flush_lag_s: documents
        # without it load (5 s); replica_events: compact, documents without it load.
        omit_default=frozenset({"cluster_names", "log_flush_lag_s", "replica_events", "approvals"}),
        sorted_keys=frozenset({"cluster_names"}),
    ),
    Size: Rules(schema={"credits_per_hour": _COUNT, "memory_bytes": _COUNT}),
    Replica: Rules(
        schema={
            "status": {"enum": ["online", "offline", None]},
            "hydrated_objects": _COUNT,
            "oom_count": _COUNT,
            "crash_count": _COUNT,
        }
    ),
    Cluster: Rules(
        omit_default=frozenset({"reconfiguration"}),  # compact; documents without it load
        schema={
            "replication_factor": _COUNT,
            "indexes": _COUNT,
            "materialized_views": _COUNT,
            "sources": _COUNT,
            "sinks": _COUNT,
            "hydration_objects": _COUNT,
            "reconfiguration": {
                "description": "managed clusters: the graceful reconfiguration in progress, else "
                "the latest one (mz_cluster_reconfigurations, v26.35+); absent when none"
            },
        },
    ),
    Reconfiguration: Rules(schema={"target_replication_factor": _COUNT}),
    StrategyRow: Rules(
        schema={
            "config": {
                "description": "as stored: an object, or JSON text (validated by decide, not here)"
            }
        }
    ),
    Plan: Rules(
        order=("cycle_id", "now", "dry_run", "experimental"),
        # Plan-level findings (rows for unknown cluster ids) came later: absent when none, so
        # older plans load and plans without any keep their bytes.
        omit_default=frozenset({"findings"}),
    ),
    ClusterPlan: Rules(
        order=(
            "cluster_id",
            "cluster_name",
            "credits_per_hour_before",
            "credits_per_hour_after",
            "empty_on_purpose",
            "errors",
            "findings",
            "notes",
            "actions",
        ),
        null_when_same_as={"state": "prev_state"},  # keeps the document small
        schema={"state": {"description": "null: unchanged"}},
    ),
    Action: Rules(
        order=(
            "id",
            "cluster_id",
            "cluster_name",
            "kind",
            "replica_name",
            "replica_id",
            "size",
            "strategy",
            "status",
            "reasons",
        ),
        # alter: alter_cluster only; codes: version 1 plans have none (and so, not required);
        # approval_id: only with the approval gate on.
        omit_default=frozenset({"alter", "codes", "approval_id"}),
        schema={
            "id": {"minLength": 1},
            "reasons": {"minItems": 1},
            "alter": {
                "description": "alter_cluster only (managed clusters): what ALTER CLUSTER sets; "
                "wait: a graceful reconfiguration WITH (WAIT UNTIL READY (TIMEOUT = timeout_s, "
                "ON TIMEOUT = 'ROLLBACK'))"
            },
        },
    ),
    Alter: Rules(
        omit_default=frozenset({"size", "replication_factor", "wait", "timeout_s"}),
        schema={"replication_factor": _COUNT, "timeout_s": {"exclusiveMinimum": 0}},
        extra={"minProperties": 1},
    ),
    Finding: Rules(omit_default=frozenset({"code"})),  # version 1 plans have none
    ActionResult: Rules(),
}
CODEC = Codec(RULES)

# kind -> (dataclass, title, description) of each document.
DOCUMENTS: dict[str, tuple[type[Any], str, str]] = {
    "signals": (
        Signals,
        "mz-schedctl signals",
        "What decide needs, read in a constant number of queries; 'now' is the Materialize "
        "server's clock.",
    ),
    "plan": (
        Plan,
        "mz-schedctl plan",
        "Self-contained output of decide: apply and persist need nothing else but the catalog.",
    ),
    "apply_result": (
        ApplyResult,
        "mz-schedctl apply result",
        "One outcome per action apply was given; persist reads it with the plan.",
    ),
}


def load_schema(name: str) -> JsonObject:
    """The shipped JSON Schema (draft 2020-12) of one document kind."""
    if name not in SCHEMA_NAMES:
        raise ValueError(f"unknown schema {name!r} (known: {', '.join(SCHEMA_NAMES)})")
    text = resources.files(__package__).joinpath(f"schemas/{name}.schema.json").read_text("utf-8")
    return cast(JsonObject, json.loads(text))


def document_schema(name: str) -> JsonObject:
    """The JSON Schema of one document kind, generated from its dataclasses and RULES."""
    cls, title, description = DOCUMENTS[name]
    defs: dict[str, JsonValue] = {}
    body = CODEC.schema(cls, defs)
    fields = body["properties"]
    required = body["required"]
    assert isinstance(fields, dict) and isinstance(required, list)
    out: JsonObject = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID.format(name=name),
        "title": title,
        "description": description,
        "type": "object",
        "properties": {
            "schema_version": _version_schema(VERSIONS[name]),
            "kind": {"const": name},
            **fields,
        },
        "required": ["schema_version", "kind", *required],
        "additionalProperties": False,
    }
    if defs:
        out["$defs"] = defs
    return out


def _version_schema(versions: tuple[int, ...]) -> JsonObject:
    if len(versions) == 1:
        return {"const": versions[0]}
    return {"enum": [*sorted(versions)]}


def _to_doc(kind: str, obj: object) -> JsonObject:
    return {"schema_version": VERSIONS[kind][0], "kind": kind, **CODEC.encode(obj)}


def _from_doc(cls: type[T], kind: str, doc: JsonValue) -> T:
    if not isinstance(doc, dict):
        raise ContractError(f"{kind}: expected an object")
    if doc.get("kind") != kind:
        raise ContractError(f"{kind}.kind: expected {kind!r}, got {doc.get('kind')!r}")
    version = doc.get("schema_version")
    if isinstance(version, bool) or version not in VERSIONS[kind]:
        expected = " or ".join(map(str, sorted(VERSIONS[kind])))
        raise ContractError(f"{kind}.schema_version: expected {expected}, got {version!r}")
    return CODEC.decode(cls, doc, kind)


def signals_to_json(signals: Signals) -> JsonObject:
    return _to_doc("signals", signals)


def signals_from_json(doc: JsonValue) -> Signals:
    return _from_doc(Signals, "signals", doc)


def plan_to_json(plan: Plan) -> JsonObject:
    return _to_doc("plan", plan)


def plan_from_json(doc: JsonValue) -> Plan:
    return _from_doc(Plan, "plan", doc)


def apply_result_to_json(result: ApplyResult) -> JsonObject:
    return _to_doc("apply_result", result)


def apply_result_from_json(doc: JsonValue) -> ApplyResult:
    return _from_doc(ApplyResult, "apply_result", doc)
