"""Property tests: invariants every plan keeps, whatever the cluster and configs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mzfixtures import NOW, apply, cluster, hydrate, hydrated_names, replica, row, signals

from mz_schedctl_provider.engine import (
    RecentAction,
    Signals,
    decide,
    load_schema,
    plan_from_json,
    plan_to_json,
)
from mz_schedctl_provider.engine.reasons import ALL_CODES

SIZE_NAMES = ["25cc", "50cc", "100cc", "200cc", "800cc"]
NAMES = ["a", "b", "r_25cc", "r_100cc", "burst", "c_burst", 'x "y"; z']
PLAN_VALIDATOR = jsonschema.Draft202012Validator(load_schema("plan"))


@st.composite
def scenarios(draw: Any) -> Signals:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
    reps = [
        replica(
            n,
            draw(st.sampled_from(SIZE_NAMES)),
            hydrated=draw(st.booleans()),
            oom=draw(st.integers(0, 3)),
            created_at=NOW - timedelta(minutes=draw(st.integers(1, 600))),
        )
        for n in names
    ]
    activity = draw(
        st.one_of(st.none(), st.integers(0, 10_000).map(lambda s: NOW - timedelta(seconds=s)))
    )
    c = cluster(
        "c",
        *reps,
        sources=draw(st.sampled_from([0, 0, 1])),
        materialized_views=draw(st.sampled_from([0, 1])),
        last_activity=activity,
    )
    common = st.fixed_dictionaries(
        {},
        optional={
            "allow_downtime": st.booleans(),
            "shadow": st.booleans(),
            "replica_scope": st.sampled_from(["all", "owned"]),
        },
    )
    rows = []
    if draw(st.booleans()):
        rows.append(
            row(
                "u10",
                "target_size",
                {"target_size": draw(st.sampled_from(SIZE_NAMES)), **draw(common)},
            )
        )
    if draw(st.booleans()):
        cfg = {
            "burst_replica_size": draw(st.sampled_from(SIZE_NAMES)),
            "max_burst_s": draw(st.sampled_from([0, 3600])),
        }
        rows.append(row("u10", "burst", {**cfg, **draw(common)}))
    if draw(st.booleans()):
        cfg = {
            "idle_after_s": draw(st.sampled_from([0, 60, 3600])),
            "allow_with_maintained_objects": draw(st.booleans()),
        }
        rows.append(row("u10", "idle_suspend", {**cfg, **draw(common)}))
    if draw(st.booleans()):
        rows.append(
            row("u10", "shrink_to_fit", {"max_replica_size": draw(st.sampled_from(SIZE_NAMES))})
        )
    recent = tuple(
        RecentAction("u10", NOW - timedelta(minutes=m)) for m in range(draw(st.integers(0, 12)))
    )
    return signals(c, rows, recent=recent, logging_visible=draw(st.booleans()))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sig=scenarios(), experimental=st.booleans())
def test_every_plan_keeps_the_rails(sig: Signals, experimental: bool) -> None:
    plan = decide(sig, cycle_id="p", dry_run=False, experimental=experimental)
    (c,) = sig.clusters
    for cp in plan.clusters:
        run = [a for a in cp.actions if a.status == "planned"]
        downtime = any(f.kind == "downtime" for f in cp.findings)
        dropped = {a.replica_name for a in run if a.kind == "drop_replica"}
        hydrated = hydrated_names(c)
        # Never the last hydrated replica, unless emptied on purpose or downtime was allowed.
        if hydrated and not cp.empty_on_purpose and not downtime:
            assert hydrated - dropped, (cp.actions, cp.notes)
        # Creates before drops.
        kinds = [a.kind for a in run]
        if not downtime:
            assert kinds == sorted(kinds)
        # No create on a taken name (never drop-then-create), no duplicate creates.
        creates = [a.replica_name for a in run if a.kind == "create_replica"]
        assert not set(creates) & {r.name for r in c.replicas}
        assert len(creates) == len(set(creates))
        # Sources/sinks: never two replicas at once.
        if c.hosts_sources_or_sinks and creates:
            assert len(c.replicas) - len(dropped) + len(creates) <= 1
        # Rate limit, reasons, ids.
        assert len(run) <= max(0, 10 - len(sig.recent_actions))
        assert all(a.reasons and all(a.reasons) and a.id for a in cp.actions)
        # Codes beside the prose: every action and finding has them, from the closed set.
        assert all(a.codes and set(a.codes) <= set(ALL_CODES) for a in cp.actions)
        assert all(len(set(a.codes)) == len(a.codes) for a in cp.actions)
        assert all(f.code in ALL_CODES for f in cp.findings)
        assert len({a.id for a in cp.actions}) == len(cp.actions)
    doc = json.loads(json.dumps(plan_to_json(plan)))
    PLAN_VALIDATOR.validate(doc)
    assert plan_from_json(doc) == plan


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sig=scenarios(),
    hydrations=st.lists(st.sampled_from([*NAMES, "r_200cc", "r_50cc", "burst_2"]), max_size=8),
)
def test_cycles_never_duplicate_or_drop_the_last_hydrated_replica(
    sig: Signals, hydrations: list[str]
) -> None:
    # ``apply`` asserts both at every step; replicas hydrate between cycles in random order.
    for i, name in enumerate([*hydrations, "", "", ""]):
        sig = apply(
            sig, decide(sig, cycle_id=f"cycle-{i}", dry_run=False), advance=timedelta(minutes=7)
        )
        if name:
            sig = hydrate(sig, name)
