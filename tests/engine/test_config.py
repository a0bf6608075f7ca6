"""Config validation: every wrong value is a named error; one bad row stops only its cluster."""

from __future__ import annotations

import pytest
from mzfixtures import SIZES, cluster, planned, replica, row, signals

from mz_schedctl_provider.engine import ConfigError, decide
from mz_schedctl_provider.engine.config import validate_row
from mz_schedctl_provider.engine.strategies import REGISTRY

SIZE_MAP = {s.name: s for s in SIZES}


def check(strategy: str, config: object) -> None:
    validate_row(
        row=row("u10", strategy, config),
        cluster_name="c",
        keys=REGISTRY[strategy].keys,
        sizes=SIZE_MAP,
    )


@pytest.mark.parametrize(
    ("strategy", "config"),
    [
        ("target_size", {"target_size": "200cc"}),
        ("burst", {"burst_replica_size": "800cc", "cooldown_s": 60}),
        ("idle_suspend", {"idle_after_s": 1800}),
        ("target_size", '{"target_size": "200cc"}'),  # JSON text works too
        ("target_size", {"target_size": "25cc", "replica_name": 'it\'s "quoted"; DROP x; ünï'}),
        ("burst", {"burst_replica_size": "800cc", "max_burst_s": 0.5, "shadow": True}),
        ("idle_suspend", {"idle_after_s": 60, "replica_scope": "owned", "allow_downtime": False}),
    ],
)
def test_valid_rows_including_the_predecessors(strategy: str, config: object) -> None:
    check(strategy, config)


@pytest.mark.parametrize(
    ("strategy", "config", "key", "message"),
    [
        ("target_size", {"target_size": "200cc", "colour": 1}, "colour", "unknown key"),
        ("target_size", {}, "target_size", "is required"),
        ("target_size", {"target_size": 200}, "target_size", "must be a size name"),
        ("target_size", {"target_size": "250cc"}, "target_size", "unknown size '250cc'"),
        ("target_size", {"target_size": "3200cc"}, "target_size", "is not allowed"),
        (
            "burst",
            {"burst_replica_size": "800cc", "max_burst_s": -1},
            "max_burst_s",
            "must not be negative",
        ),
        ("idle_suspend", {"idle_after_s": "1800"}, "idle_after_s", "must be a number"),
        ("idle_suspend", {"idle_after_s": True}, "idle_after_s", "must be a number"),
        ("idle_suspend", {"idle_after_s": 1e12}, "idle_after_s", "is too large"),
        ("idle_suspend", {"idle_after_s": 60, "enabled": 1}, "enabled", "must be true or false"),
        ("idle_suspend", {"idle_after_s": 60, "resume": "yes"}, "resume", "must be true or false"),
        (
            "idle_suspend",
            {"idle_after_s": 60, "cooldown_s": -5},
            "cooldown_s",
            "must not be negative",
        ),
        (
            "idle_suspend",
            {"idle_after_s": 60, "replica_scope": "mine"},
            "replica_scope",
            '"all" or "owned"',
        ),
        (
            "target_size",
            {"target_size": "25cc", "replica_name": "mz_r"},
            "replica_name",
            "reserved",
        ),
        (
            "target_size",
            {"target_size": "25cc", "replica_name": "PG_r"},
            "replica_name",
            "reserved",
        ),
        ("target_size", {"target_size": "25cc", "replica_name": ""}, "replica_name", "non-empty"),
        (
            "shrink_to_fit",
            {"max_replica_size": "800cc", "max_replicas": 2.5},
            "max_replicas",
            "whole",
        ),
        (
            "shrink_to_fit",
            {"max_replica_size": "800cc", "max_replicas": 10**9},
            "max_replicas",
            "too large",
        ),
        (
            "shrink_to_fit",
            {"max_replica_size": "800cc", "max_replicas": 0},
            "max_replicas",
            "at least 1",
        ),
        (
            "shrink_to_fit",
            {"max_replica_size": "800cc", "max_credits_per_hour": float("nan")},
            "max_credits_per_hour",
            "finite",
        ),
    ],
)
def test_invalid_values_name_cluster_strategy_and_key(
    strategy: str, config: object, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        check(strategy, config)
    err = info.value
    assert (err.cluster_name, err.strategy, err.key) == ("c", strategy, key)
    assert message in str(err)
    assert f"cluster 'c' (u10), strategy {strategy!r}: key {key!r}" in str(err)


@pytest.mark.parametrize("value", [10**30, -(10**30), 10**400])
def test_huge_integers_are_named_errors_not_crashes(value: int) -> None:
    # JSONB keeps 1e400 as an exact integer; math.isfinite on it used to raise OverflowError.
    with pytest.raises(ConfigError) as info:
        check("idle_suspend", {"idle_after_s": value})
    assert info.value.key == "idle_after_s"


@pytest.mark.parametrize("config", ["not json", "[1, 2]", 42, None])
def test_config_must_be_an_object(config: object) -> None:
    with pytest.raises(ConfigError, match="config"):
        check("target_size", config)


def test_one_bad_row_stops_only_its_cluster() -> None:
    good = cluster("good", cid="u1")
    bad = cluster("bad", replica("r", "25cc"), cid="u2")
    sig = signals(
        [good, bad],
        [
            row("u1", "target_size", {"target_size": "50cc"}),
            row("u2", "target_size", {"target_size": "50cc"}),
            row("u2", "burst", {"burst_replica_size": "999cc"}),
            row("u3", "no_such_strategy", {}),  # a cluster that no longer exists: ignored
        ],
    )
    plan = decide(sig, cycle_id="c", dry_run=False)
    by_name = {c.cluster_name: c for c in plan.clusters}
    assert planned(by_name["good"]) == [("create_replica", "r_50cc", "50cc")]
    assert by_name["bad"].actions == ()
    assert len(by_name["bad"].errors) == 1
    assert (
        "strategy 'burst': key 'burst_replica_size': unknown size '999cc'"
        in by_name["bad"].errors[0]
    )
    assert plan.errors() == [f"bad: {by_name['bad'].errors[0]}"]


def test_unknown_strategy_is_an_error_for_its_cluster() -> None:
    sig = signals(cluster("c"), [row("u10", "schedulee", {"windows": []})])
    (cp,) = decide(sig, cycle_id="c", dry_run=False).clusters
    known = "burst, idle_suspend, schedule, shrink_to_fit, target_size"
    assert f"strategy 'schedulee': unknown strategy (known: {known})" in cp.errors[0]


def test_newest_row_per_strategy_wins_and_disabled_rows_are_out_of_scope() -> None:
    from mzfixtures import NOW

    sig = signals(
        cluster("c"),
        [
            row("u10", "target_size", {"target_size": "25cc"}, updated_at=NOW.replace(hour=1)),
            row("u10", "target_size", {"target_size": "50cc"}, updated_at=NOW.replace(hour=2)),
        ],
    )
    assert planned(decide(sig, cycle_id="c", dry_run=False).clusters[0]) == [
        ("create_replica", "r_50cc", "50cc")
    ]
    off = signals(
        cluster("c"), [row("u10", "target_size", {"target_size": "bogus", "enabled": False})]
    )
    assert decide(off, cycle_id="c", dry_run=False).clusters == ()


def test_burst_of_the_target_size_is_refused() -> None:
    sig = signals(
        cluster("c"),
        [
            row("u10", "target_size", {"target_size": "800cc"}),
            row("u10", "burst", {"burst_replica_size": "800cc"}),
        ],
    )
    (cp,) = decide(sig, cycle_id="c", dry_run=False).clusters
    assert cp.actions == ()
    assert "key 'burst_replica_size': equals target_size '800cc'" in cp.errors[0]


def test_burst_replica_name_equal_to_the_target_replica_name_is_refused() -> None:
    # Defect 10: the burst named like target_size's replica: the target replica was taken for
    # the burst (or the other way round) and the resize never happened.
    for target_cfg, burst_name in [
        ({"target_size": "100cc", "replica_name": "main"}, "main"),
        ({"target_size": "100cc"}, "r_100cc"),  # target_size's default name
        ({"target_size": "100cc", "replica_name": "burst"}, None),  # burst's default name
    ]:
        burst_cfg: dict[str, object] = {"burst_replica_size": "800cc"}
        if burst_name is not None:
            burst_cfg["replica_name"] = burst_name
        sig = signals(
            cluster("c", replica("r_25cc", "25cc")),
            [row("u10", "target_size", target_cfg), row("u10", "burst", burst_cfg)],
        )
        (cp,) = decide(sig, cycle_id="c", dry_run=False).clusters
        assert cp.actions == ()
        (error,) = cp.errors
        shown = burst_name or "burst"
        assert (
            f"strategy 'target_size': key 'replica_name': equals burst's replica_name {shown!r}"
            in (error)
        ), error


def test_target_replica_named_like_the_predecessor_burst_is_refused() -> None:
    sig = signals(
        cluster("c", replica("r_25cc", "25cc")),
        [
            row("u10", "target_size", {"target_size": "100cc", "replica_name": "c_burst"}),
            row("u10", "burst", {"burst_replica_size": "800cc"}),
        ],
    )
    (cp,) = decide(sig, cycle_id="c", dry_run=False).clusters
    assert cp.actions == ()
    (error,) = cp.errors
    assert "'c_burst' is the predecessor's burst name" in error


def test_burst_of_a_schedule_window_size_is_refused() -> None:
    window = {"days": ["mon"], "start": "08:00", "end": "19:00", "size": "800cc"}
    sig = signals(
        cluster("c", replica("r_25cc", "25cc")),
        [
            row("u10", "schedule", {"timezone": "UTC", "windows": [window]}),
            row("u10", "burst", {"burst_replica_size": "800cc"}),
        ],
    )
    (cp,) = decide(sig, cycle_id="c", dry_run=False).clusters
    assert cp.actions == ()
    (error,) = cp.errors
    assert "key 'burst_replica_size': equals windows[0].size '800cc'" in error


def test_distinct_names_and_sizes_pass_the_cross_row_check() -> None:
    sig = signals(
        cluster("c", replica("r_25cc", "25cc")),
        [
            row("u10", "target_size", {"target_size": "100cc", "replica_name": "main"}),
            row("u10", "burst", {"burst_replica_size": "800cc", "replica_name": "big"}),
        ],
    )
    (cp,) = decide(sig, cycle_id="c", dry_run=False).clusters
    assert cp.errors == ()
    assert ("create_replica", "main") in [(a.kind, a.replica_name) for a in cp.actions]
