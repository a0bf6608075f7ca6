# ruff: noqa: F811  (fixtures imported from emucatalog_fixtures)
"""PostgreSQL's statistics of the emulator's base tables follow a fleet being built
(emulator.stats), so the catalog views are planned with row counts that are right."""

from __future__ import annotations

from typing import Any

from emucatalog_fixtures import Env, env, pg_uri  # noqa: F401

from mz_schedctl_provider.emulator import stats


def _planned_and_actual(env: Env, query: str) -> tuple[float, int]:
    plan: Any = env.user.execute(f"EXPLAIN (FORMAT JSON) {query}").fetchone()[0]  # type: ignore[index]
    actual = len(env.rows(query))
    return float(plan[0]["Plan"]["Plan Rows"]), actual


def _fleet(env: Env, n: int) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    for i in range(n):
        env.run(f"CREATE CLUSTER c{i} REPLICAS (r1 (SIZE = '25cc'), r2 (SIZE = '50cc'))")
        env.run(f"CREATE INDEX i{i} IN CLUSTER c{i} ON t (a)")


def test_estimates_follow_the_catalog_as_it_grows(env: Env) -> None:
    _fleet(env, 150)
    for query in (
        "SELECT * FROM mz_catalog.mz_cluster_replicas",
        "SELECT * FROM mz_catalog.mz_indexes",
        "SELECT * FROM mz_catalog.mz_clusters",
    ):
        planned, actual = _planned_and_actual(env, query)
        # Within one doubling (PostgreSQL scales the analysed density by the current pages, so
        # it may also be somewhat ahead); unanalysed, mz_cluster_replicas is planned at ~2 rows.
        assert actual / stats.GROWTH <= planned <= actual * stats.GROWTH, (query, planned, actual)


def test_analyses_only_when_the_catalog_has_doubled(env: Env) -> None:
    def analysed_at() -> int:
        return int(
            env.admin.execute(
                "SELECT value FROM mz_emulator.settings WHERE name = 'emulator_analyzed_at'"
            ).fetchone()[0]  # type: ignore[index]
        )

    def size() -> int:
        return int(env.admin.execute("SELECT mz_emulator.catalog_size()").fetchone()[0])  # type: ignore[index]

    fresh = analysed_at()
    assert fresh == size() > 0  # install analysed the seeded instance
    rounds = 0
    last = fresh
    env.user.execute("CREATE TABLE t (a int)")
    for i in range(60):
        env.run(f"CREATE CLUSTER c{i} REPLICAS (r1 (SIZE = '25cc'))")
        env.run(f"CREATE INDEX i{i} IN CLUSTER c{i} ON t (a)")
        now = analysed_at()
        if now != last:
            assert now >= stats.GROWTH * last  # only once the catalog doubled
            rounds += 1
            last = now
        assert size() < stats.GROWTH * last  # and never later than that
    # 60 clusters x (cluster + replica + 4 introspection indexes + index) from ~15: 5 rounds.
    assert 1 <= rounds <= 6
