"""Hostile and malformed input: a corpus of strategy rows that must each be refused with a
clear error naming the cluster, the strategy and the key (through the API and in the CLI's
stderr, never a traceback), without anything injected (the catalog and a canary table are
unchanged) and without holding back other clusters; CLI arguments a user controls; and names,
which are different: any name Materialize accepts is legitimate and must work end to end.

The corpus runs as one CLI cycle over one cluster per case (module fixture), then each case
checks its own line of that output and its own cluster: one subprocess for the whole corpus."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from mzsupport import (
    add_strategy,
    cli,
    connect,
    make_cluster,
    q,
    replicas,
    run_cycle,
    server_now,
)
from safetysupport import FIGURES, Observer, audit_gaps, replica_ddl

from mz_schedctl_provider.emulator.control import Emulator

INJECT = "'; DROP TABLE safety_canary; --"
INJECT_Q = 'x"; DROP TABLE safety_canary; --'


@dataclass(frozen=True)
class Case:
    """One hostile row: its strategy type, its config as stored JSON text, and the key the
    error must name (None: the whole config, or an unknown strategy)."""

    id: str
    strategy: str
    config: str
    key: str | None
    says: str  # a fragment the message must contain


def j(value: Any) -> str:
    return json.dumps(value)


CASES: tuple[Case, ...] = (
    # Not an object at all.
    Case("json-string-garbage", "target_size", j("{not json"), None, "not valid JSON"),
    Case("json-string-truncated", "target_size", j('{"target_size": "1'), None, "not valid JSON"),
    Case("json-array", "target_size", "[1, 2]", None, "must be a JSON object"),
    Case("json-number", "burst", "42", None, "must be a JSON object"),
    Case("json-null", "idle_suspend", "null", None, "must be a JSON object"),
    Case("json-true", "idle_suspend", "true", None, "must be a JSON object"),
    Case("json-string-of-array", "burst", j("[]"), None, "must be a JSON object"),
    # Unknown strategies (the type is user text too).
    Case("unknown-strategy", "tarGet_size", j({"target_size": "100cc"}), None, "unknown strategy"),
    Case("inject-strategy", INJECT, j({"target_size": "100cc"}), None, "unknown strategy"),
    Case("empty-strategy", "", j({}), None, "unknown strategy"),
    # target_size
    Case("size-missing", "target_size", j({}), "target_size", "is required"),
    Case("size-number", "target_size", j({"target_size": 100}), "target_size", "size name"),
    Case("size-unknown", "target_size", j({"target_size": "999cc"}), "target_size", "unknown"),
    Case("size-case", "target_size", j({"target_size": "100CC"}), "target_size", "unknown"),
    Case("size-space", "target_size", j({"target_size": " 100cc"}), "target_size", "unknown"),
    Case("size-empty", "target_size", j({"target_size": ""}), "target_size", "unknown"),
    Case("size-null", "target_size", j({"target_size": None}), "target_size", "size name"),
    Case("size-list", "target_size", j({"target_size": ["100cc"]}), "target_size", "size name"),
    Case("size-inject", "target_size", j({"target_size": "100cc" + INJECT}), "target_size", ""),
    Case("size-inject-q", "target_size", j({"target_size": INJECT_Q}), "target_size", "unknown"),
    Case(
        "size-nested",
        "target_size",
        j({"target_size": {"nested": [{"deep": [1, 2, {"x": None}]}]}}),
        "target_size",
        "size name",
    ),
    Case("size-huge-text", "target_size", j({"target_size": "9" * 20000}), "target_size", ""),
    Case(
        "name-reserved-mz",
        "target_size",
        j({"target_size": "100cc", "replica_name": "mz_evil"}),
        "replica_name",
        "reserved",
    ),
    Case(
        "name-reserved-pg",
        "target_size",
        j({"target_size": "100cc", "replica_name": "PG_x"}),
        "replica_name",
        "reserved",
    ),
    Case(
        "name-empty",
        "target_size",
        j({"target_size": "100cc", "replica_name": ""}),
        "replica_name",
        "non-empty",
    ),
    Case(
        "name-number",
        "target_size",
        j({"target_size": "100cc", "replica_name": 7}),
        "replica_name",
        "non-empty string",
    ),
    Case(
        "name-too-long",
        "target_size",
        j({"target_size": "100cc", "replica_name": "r" * 300}),
        "replica_name",
        "too long",
    ),
    Case("unknown-key", "target_size", j({"target_size": "100cc", "size": 1}), "size", "unknown"),
    Case("key-inject", "target_size", j({"target_size": "100cc", INJECT: 1}), INJECT, "unknown"),
    # burst
    Case("burst-missing", "burst", j({"max_burst_s": 60}), "burst_replica_size", "is required"),
    Case(
        "burst-inject",
        "burst",
        j({"burst_replica_size": "800cc' OR '1'='1"}),
        "burst_replica_size",
        "unknown",
    ),
    Case(
        "burst-negative",
        "burst",
        j({"burst_replica_size": "800cc", "max_burst_s": -1}),
        "max_burst_s",
        "negative",
    ),
    Case(
        "burst-string-number",
        "burst",
        j({"burst_replica_size": "800cc", "max_burst_s": "3600"}),
        "max_burst_s",
        "number",
    ),
    Case(
        "burst-bool-number",
        "burst",
        j({"burst_replica_size": "800cc", "max_burst_s": True}),
        "max_burst_s",
        "number",
    ),
    Case(
        "burst-huge",
        "burst",
        j({"burst_replica_size": "800cc", "max_burst_s": 1e300}),
        "max_burst_s",
        "too large",
    ),
    # idle_suspend: durations and flags.
    Case("idle-negative", "idle_suspend", j({"idle_after_s": -1}), "idle_after_s", "negative"),
    Case("idle-neg-zero-ish", "idle_suspend", j({"idle_after_s": -1e-9}), "idle_after_s", ""),
    Case("idle-string", "idle_suspend", j({"idle_after_s": "1800"}), "idle_after_s", "number"),
    Case("idle-null", "idle_suspend", j({"idle_after_s": None}), "idle_after_s", "number"),
    Case("idle-list", "idle_suspend", j({"idle_after_s": [1]}), "idle_after_s", "number"),
    Case("idle-huge", "idle_suspend", j({"idle_after_s": 1e20}), "idle_after_s", "too large"),
    # JSONB keeps 1e400 as an exact (huge) number: inf and NaN are not representable.
    Case("idle-1e400", "idle_suspend", '{"idle_after_s": 1e400}', "idle_after_s", "too large"),
    Case("idle-minus-1e400", "idle_suspend", '{"idle_after_s": -1e400}', "idle_after_s", "neg"),
    Case(
        "idle-bigint",
        "idle_suspend",
        '{"idle_after_s": 99999999999999999999999999}',
        "idle_after_s",
        "too large",
    ),
    Case(
        "idle-resume-string",
        "idle_suspend",
        j({"idle_after_s": 60, "resume": "yes"}),
        "resume",
        "true or false",
    ),
    Case(
        "idle-allow-number",
        "idle_suspend",
        j({"idle_after_s": 60, "allow_with_maintained_objects": 1}),
        "allow_with_maintained_objects",
        "true or false",
    ),
    # Common keys.
    Case(
        "cooldown-negative",
        "target_size",
        j({"target_size": "100cc", "cooldown_s": -5}),
        "cooldown_s",
        "negative",
    ),
    Case(
        "cooldown-huge",
        "target_size",
        j({"target_size": "100cc", "cooldown_s": 1e15}),
        "cooldown_s",
        "too large",
    ),
    Case(
        "enabled-string",
        "target_size",
        j({"target_size": "100cc", "enabled": "false"}),
        "enabled",
        "true or false",
    ),
    Case(
        "shadow-number",
        "target_size",
        j({"target_size": "100cc", "shadow": 1}),
        "shadow",
        "true or false",
    ),
    Case(
        "scope-unknown",
        "target_size",
        j({"target_size": "100cc", "replica_scope": "mine"}),
        "replica_scope",
        '"all" or "owned"',
    ),
    Case(
        "scope-inject",
        "target_size",
        j({"target_size": "100cc", "replica_scope": INJECT}),
        "replica_scope",
        "",
    ),
    Case(
        "downtime-string",
        "target_size",
        j({"target_size": "100cc", "allow_downtime": "yes"}),
        "allow_downtime",
        "true or false",
    ),
    # schedule: the structured config.
    Case("schedule-tz", "schedule", j({"timezone": "Mars/Olympus"}), "timezone", ""),
    Case(
        "schedule-windows-garbage",
        "schedule",
        j({"timezone": "UTC", "windows": [{"days": ["funday"], "start": "25:00"}]}),
        "",
        "",
    ),
    Case(
        "schedule-windows-not-list",
        "schedule",
        j({"timezone": "UTC", "windows": {"a": 1}}),
        "windows",
        "",
    ),
)


def _key_of(case: Case) -> str | None:
    return case.key or None


@dataclass
class CorpusRun:
    clusters: dict[str, tuple[str, str]]  # case id -> (cluster name, cluster id)
    before: dict[str, dict[str, str]]  # cluster name -> replicas
    other: str
    returncode: int
    stdout: str
    stderr: str
    since: Any


@pytest.fixture(scope="module")
def corpus(emulator: Emulator) -> Iterator[CorpusRun]:
    emulator.execute("CREATE TABLE IF NOT EXISTS safety_canary (a int)")
    since = server_now(emulator)
    clusters: dict[str, tuple[str, str]] = {}
    for i, case in enumerate(CASES):
        name = f"hx{i}"
        cid = make_cluster(emulator, name, objects="index")
        add_strategy(emulator, cid, case.strategy, case.config, raw=True)
        clusters[case.id] = (name, cid)
        FIGURES["inputs_tried"] += 1
    other = "hx_other"
    other_id = make_cluster(emulator, other, objects="index")
    emulator.advance(70)
    add_strategy(emulator, other_id, "target_size", {"target_size": "100cc"})
    before = {name: replicas(emulator, name) for name, _ in clusters.values()}
    done = cli("apply", "--filter-clusters", "hx.*", url=emulator.url)
    yield CorpusRun(clusters, before, other, done.returncode, done.stdout, done.stderr, since)
    emulator.execute("DELETE FROM mz_cluster_strategies")


def test_the_corpus_has_enough_cases() -> None:
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_cli_run_fails_visibly_without_a_traceback(
    corpus: CorpusRun, emulator: Emulator
) -> None:
    assert corpus.returncode == 1, corpus.stdout + corpus.stderr
    assert "Traceback" not in corpus.stderr + corpus.stdout
    # Nothing injected: the canary table is still there; the healthy cluster went on.
    assert emulator.execute("SELECT count(*) FROM safety_canary") == [(0,)]
    assert replicas(emulator, corpus.other) == {"r1": "25cc", "r_100cc": "100cc"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_hostile_row_is_named_and_contained(
    corpus: CorpusRun, emulator: Emulator, case: Case
) -> None:
    name, cid = corpus.clusters[case.id]
    expected = f"invalid config for cluster {name!r} ({cid}), strategy {case.strategy!r}: "
    lines = [line.strip() for line in corpus.stderr.splitlines() if expected in line]
    assert len(lines) == 1, f"no single error line for {case.id}: {corpus.stderr[-3000:]}"
    line = lines[0]
    if case.key:
        assert f"{expected}key {case.key!r}: " in line, line
    elif case.key is None:
        assert f"{expected}key " not in line, line
    assert case.says in line, line
    assert len(line) < 1000 or case.id == "size-huge-text", "an error line must stay readable"
    # The cluster got nothing; no controller DDL touched it.
    assert replicas(emulator, name) == corpus.before[name]
    obs = Observer(emulator)
    try:
        ddl = [d for d in replica_ddl(obs, since=corpus.since) if d.controller]
    finally:
        obs.close()
    assert not [d for d in ddl if d.cluster == name]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["plan", "--filter-clusters", "(?P<x"], 2, "not a valid regex"),
        (["apply", "--filter-clusters", "[z-a]"], 2, "not a valid regex"),
        (["apply", "--filter-clusters", "x" + INJECT], 0, ""),
        (["plan", "--schema", INJECT_Q], 0, ""),
        (["apply", "--schema", INJECT_Q], 1, "refused"),
        (["status", "--schema", INJECT], 0, ""),
        (["wipe-state", "--schema", INJECT_Q, "--filter-clusters", INJECT], 0, ""),
        (["init", "--print-sql", "--schema", INJECT_Q], 0, ""),
        (["apply", "--cluster", INJECT_Q, "--filter-clusters", "nothing"], 1, ""),
    ],
    ids=[
        "bad-regex",
        "bad-range",
        "inject-filter",
        "inject-schema-plan",
        "inject-schema-apply",
        "inject-schema-status",
        "inject-wipe",
        "inject-print-sql",
        "inject-cluster",
    ],
)
def test_hostile_cli_arguments(emulator: Emulator, args: list[str], code: int, says: str) -> None:
    emulator.execute("CREATE TABLE IF NOT EXISTS safety_canary (a int)")
    before = emulator.execute(
        "SELECT r.id, r.name, r.size FROM mz_catalog.mz_cluster_replicas r ORDER BY r.id"
    )
    done = cli(*args, url=emulator.url)
    FIGURES["inputs_tried"] += 1
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert says in done.stderr
    if done.returncode:
        assert done.stderr.startswith("mz-schedctl: ") or "problem(s)" in done.stderr
    assert emulator.execute("SELECT count(*) FROM safety_canary") == [(0,)]
    after = emulator.execute(
        "SELECT r.id, r.name, r.size FROM mz_catalog.mz_cluster_replicas r ORDER BY r.id"
    )
    assert after == before
    if "--print-sql" in args:
        # Printed, not run: the schema name is quoted in every statement.
        assert all(s.count(q(INJECT_Q)) == 1 for s in done.stdout.split(";\n") if s.strip())


LEGIT_NAMES = (
    INJECT_Q,
    INJECT,
    "sp ace",
    "ünï☃ 名前",
    "semi;colon",
    "back\\slash",
    "per%scent%(x)s",
    "$1",
    "-- comment",
    "UPPER lower",
)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("label", range(len(LEGIT_NAMES)), ids=lambda i: f"name{i}")
def test_legitimate_names_resize_end_to_end(emulator: Emulator, driver: str, label: int) -> None:
    """Cluster, replica and target replica names with quotes, semicolons, comment markers,
    percent signs (psycopg2 inlines parameters), unicode and spaces: a full zero-downtime
    resize works and every DDL is audited."""
    base = LEGIT_NAMES[label]
    cluster = f"{base} c{driver[-1]}"
    old, new = f"{base} old", f"{base} new"
    cid = make_cluster(emulator, cluster, replica=old, objects="mv")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "replica_name": new})
    FIGURES["inputs_tried"] += 1
    since = server_now(emulator)
    db = connect(emulator, driver)
    try:
        run = run_cycle(db, only=cluster)
        assert run.outcomes() == ["succeeded"], run.result
        assert replicas(emulator, cluster) == {old: "25cc", new: "100cc"}
        emulator.advance(40)
        run = run_cycle(db, only=cluster)
        assert run.outcomes() == ["succeeded"], run.result
    finally:
        db.close()
    assert replicas(emulator, cluster) == {new: "100cc"}
    obs = Observer(emulator)
    try:
        assert audit_gaps(obs, since=since, cluster_ids=[cid]) == []
        ddl = [d for d in replica_ddl(obs, since=since) if d.controller]
    finally:
        obs.close()
    assert [(d.kind, d.cluster, d.replica) for d in ddl] == [
        ("create", cluster, new),
        ("drop", cluster, old),
    ]
    assert emulator.execute(
        "SELECT count(*) FROM mz_catalog.mz_clusters WHERE name = %s", (cluster,)
    ) == [(1,)]
    emulator.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = %s", (cid,))


def test_cluster_ids_in_rows_are_data_not_sql(emulator: Emulator) -> None:
    """Rows naming clusters that do not exist (or SQL as a cluster id) are simply not in
    scope: nothing happens, nothing is injected."""
    emulator.execute("CREATE TABLE IF NOT EXISTS safety_canary (a int)")
    emulator.execute("DELETE FROM mz_cluster_strategies")  # only this test's rows
    for cid in (INJECT, INJECT_Q, "u999999", "", "s1' OR '1'='1"):
        add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
        FIGURES["inputs_tried"] += 1
    before = emulator.execute("SELECT id, name, size FROM mz_catalog.mz_cluster_replicas")
    done = cli("apply", url=emulator.url)
    assert "Traceback" not in done.stderr
    assert emulator.execute("SELECT count(*) FROM safety_canary") == [(0,)]
    after = emulator.execute("SELECT id, name, size FROM mz_catalog.mz_cluster_replicas")
    assert sorted(after) == sorted(before)
    emulator.execute("DELETE FROM mz_cluster_strategies")


def test_error_lines_name_cluster_strategy_and_key_in_the_plan(emulator: Emulator) -> None:
    """The same errors through the API (the plan document the DAG shows)."""
    obs_name = "hx_api"
    cid = make_cluster(emulator, obs_name, objects=None)
    add_strategy(emulator, cid, "idle_suspend", '{"idle_after_s": 1e400}', raw=True)
    huge = "1" + "0" * 400
    db = connect(emulator, "psycopg")
    try:
        run = run_cycle(db, only=obs_name, dry_run=True)
    finally:
        db.close()
    errors = run.cluster(obs_name)["errors"]
    assert errors == [
        f"invalid config for cluster {obs_name!r} ({cid}), strategy 'idle_suspend': "
        f"key 'idle_after_s': is too large (got {huge} seconds, at most 315360000)"
    ]
    assert re.search(r"hx_api", run.outcome.problems[0])
    emulator.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = %s", (cid,))
