"""JSON documents: schema-valid, round-trip, versioned, compact."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import jsonschema
import pytest
from mzfixtures import NOW, cluster, replica, row, signals

from mz_schedctl_provider.engine import (
    ActionResult,
    ApplyResult,
    ContractError,
    RecentAction,
    StateRow,
    apply_result_from_json,
    apply_result_to_json,
    decide,
    load_schema,
    plan_from_json,
    plan_to_json,
    signals_from_json,
    signals_to_json,
)


def validate(doc: object, name: str) -> None:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(json.loads(json.dumps(doc)))


def sample_signals():  # type: ignore[no-untyped-def]
    c = cluster(
        'quoted "name"; ü',
        replica("r_25cc", "25cc", hydrated=False),
        replica("burst", "800cc", oom=2, crash=3),
        materialized_views=2,
    )
    return signals(
        c,
        [
            row("u10", "target_size", {"target_size": "100cc"}),
            row("u10", "burst", '{"burst_replica_size": "800cc", "cooldown_s": 60}'),
            row(
                "u10", "idle_suspend", {"idle_after_s": 1800, "allow_with_maintained_objects": True}
            ),
        ],
        states=(
            StateRow("u10", 2, {"strategies": {"burst": {"started_at": NOW.isoformat()}}}, NOW),
        ),
        recent=(RecentAction("u10", NOW - timedelta(minutes=3), "burst"),),
    )


def test_signals_round_trip_and_validate() -> None:
    sig = sample_signals()
    doc = signals_to_json(sig)
    validate(doc, "signals")
    assert signals_from_json(json.loads(json.dumps(doc))) == sig


def test_plan_and_apply_result_round_trip_validate_and_stay_compact() -> None:
    sig = sample_signals()
    plan = decide(sig, cycle_id="manual__2026-11-25", dry_run=True, render=lambda a: f"-- {a.kind}")
    assert plan.actions()
    doc = plan_to_json(plan)
    validate(doc, "plan")
    assert plan_from_json(json.loads(json.dumps(doc))) == plan
    per_cluster = len(json.dumps(doc["clusters"][0]))  # type: ignore[index]
    assert per_cluster < 2048, per_cluster

    result = ApplyResult(
        plan.cycle_id,
        True,
        results=tuple(ActionResult(a.id, a.cluster_id, "succeeded") for a in plan.actions()),
    )
    rdoc = apply_result_to_json(result)
    validate(rdoc, "apply_result")
    assert apply_result_from_json(json.loads(json.dumps(rdoc))) == result


def test_wrong_version_kind_or_naive_time_is_refused() -> None:
    doc = signals_to_json(sample_signals())
    with pytest.raises(ContractError, match="schema_version"):
        signals_from_json({**doc, "schema_version": 2})
    with pytest.raises(ContractError, match="kind"):
        plan_from_json(doc)
    with pytest.raises(ContractError, match=r"signals\.now: timestamp without a time zone"):
        signals_from_json({**doc, "now": "2026-11-25T12:00:00"})
    with pytest.raises(ContractError, match=r"signals.clusters\[0\].replicas\[0\].oom_count"):
        bad = json.loads(json.dumps(doc))
        bad["clusters"][0]["replicas"][0]["oom_count"] = "many"
        signals_from_json(bad)
    with pytest.raises(ValueError, match="naive timestamp"):
        signals_to_json(sample_signals().__class__(now=datetime(2026, 1, 1), logging_visible=True))
