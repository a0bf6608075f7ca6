"""Reason codes beside the prose: a closed, documented set, carried by the plan (v2)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from mzfixtures import cluster, replica, row, signals
from test_contract import sample_signals

from mz_schedctl_provider.engine import (
    ContractError,
    decide,
    load_schema,
    plan_from_json,
    plan_to_json,
)
from mz_schedctl_provider.engine.reasons import ALL_CODES, REASON_CODES


def test_every_code_is_documented_once_and_the_schema_lists_exactly_them() -> None:
    assert len(set(ALL_CODES)) == len(ALL_CODES)
    assert list(REASON_CODES) == list(ALL_CODES)
    assert all(REASON_CODES[c].strip() for c in ALL_CODES)
    schema: Any = load_schema("plan")
    assert schema["$defs"]["action"]["properties"]["codes"]["items"]["enum"] == list(ALL_CODES)
    finding_code = schema["$defs"]["finding"]["properties"]["code"]
    assert list(ALL_CODES) in [t.get("enum") for t in finding_code.get("anyOf", [finding_code])]


def test_the_plan_document_carries_codes_at_version_2() -> None:
    plan = decide(sample_signals(), cycle_id="c1", dry_run=True)
    doc: Any = json.loads(json.dumps(plan_to_json(plan)))
    assert doc["schema_version"] == 2
    actions = [a for c in doc["clusters"] for a in c["actions"]]
    assert actions and all(a["codes"] for a in actions)
    assert plan_from_json(doc) == plan
    # A code outside the closed set is refused, with its path.
    doc["clusters"][0]["actions"][0]["codes"] = ["because"]
    with pytest.raises(ContractError, match=r"actions\[0\]\.codes\[0\]: expected one of exists, "):
        plan_from_json(doc)


def test_a_version_1_plan_still_loads_without_codes() -> None:
    base = sample_signals()
    system = signals(
        cluster("mz_x", replica("r1", "25cc"), cid="s9"),
        [row("s9", "target_size", {"target_size": "100cc"})],
    )
    sig = replace(
        base,
        clusters=(*base.clusters, *system.clusters),
        strategies=(*base.strategies, *system.strategies),
    )
    plan = decide(sig, cycle_id="c1", dry_run=True)
    doc: Any = json.loads(json.dumps(plan_to_json(plan)))
    v1 = json.loads(json.dumps(doc))
    v1["schema_version"] = 1
    for c in v1["clusters"]:
        for a in c["actions"]:
            del a["codes"]
        for f in c["findings"]:
            del f["code"]
    jsonschema.Draft202012Validator(load_schema("plan")).validate(v1)
    old = plan_from_json(v1)
    assert [a.codes for a in old.actions()] == [()] * len(plan.actions())
    assert all(f.code is None for c in old.clusters for f in c.findings)
    # Everything but the codes is the same plan.
    assert [a.reasons for a in old.actions()] == [a.reasons for a in plan.actions()]
    assert any(f.code == "system_cluster" for c in plan.clusters for f in c.findings)
    with pytest.raises(ContractError, match="schema_version: expected 1 or 2, got 3"):
        plan_from_json({**doc, "schema_version": 3})
