"""The rate limit counts attempts, not successes (behaviour.md: at most max_actions_per_window
DDL per cluster per rolling hour, failed ones included): a DDL that Materialize refuses still
reached it. Read back from the real audit trail over the socket, with both drivers."""

from __future__ import annotations

from mzsupport import add_strategy, make_cluster, replicas, run_cycle

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.engine.safety import DEFAULT_LIMITS
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database

LIMIT = DEFAULT_LIMITS.max_actions_per_window


def test_failed_attempts_fill_the_rate_limit(
    emulator: Emulator, tables: None, db: Database, name: str
) -> None:
    """Every cycle's CREATE fails and the state row (with its backoff) is wiped after it, so
    only the rate limit stands between the controller and a retry every cycle: after
    max_actions_per_window failed attempts in the hour the next create waits."""
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    settings = cycle.CycleSettings()
    try:
        for attempt in range(LIMIT):
            emulator.inject_fault(r"^\s*CREATE CLUSTER REPLICA", "error", "injected refusal")
            run = run_cycle(db, only=name)
            assert run.outcomes() == ["failed"], (attempt, run.plan)
            cycle.wipe_state(db, settings, filter_clusters=name)  # the backoff is lost
    finally:
        emulator.execute("SELECT mz_emulator.clear_faults()")
    signals = cycle.collect(db, settings, filter_clusters=name)
    assert len(signals["recent_actions"]) == LIMIT  # type: ignore[arg-type]
    run = run_cycle(db, only=name)
    [create] = run.actions()
    assert create["kind"] == "create_replica"
    assert create["status"] == "deferred"
    assert "rate_limit" in create["codes"]
    assert "r_50cc" not in replicas(emulator, name)
