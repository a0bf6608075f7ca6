"""Model-based randomized test of the whole controller (engine + runtime layer) against the
emulator: random histories of time, queries (finished, refused, or running across cycles),
hydration, OOMs and crashes, hand-made replicas, renames and drop-and-recreate under one name,
unmanaged and managed clusters (with sources, views, indexes or nothing), strategy rows that
come, change, go or turn invalid (cooldowns on every strategy, replica_scope owned, shadow,
disabled, schedule windows), predecessor state rows, the statement log's sample rate (0 for
some cycles) and flush lag, either driver; and cycles (dry run, kill switch, apply, apply
killed between any two statements and retried, apply under injected faults, persist failing,
a crash between apply and persist, wipe-state, an edited plan, races between decide and
apply). After every step the invariants (safety_invariants.py) are checked against ground
truth read from the emulator (its catalog, its hydration view and its statement log), never
against the controller's own report. The world is safety_world.py, the cycles
safety_steps.py; the figures (step kinds, invariants checked, rails fired) print at the end.

Seeded and reproducible: ``MZ_SCHEDCTL_SAFETY_SEED`` (default below) seeds everything; a failure
prints the seed, the scenario and its steps. ``MZ_SCHEDCTL_SAFETY_SCENARIOS`` (default 200) or
``--safety-long`` (5000) sets how many scenarios run. One emulator is shared; each scenario
builds fresh clusters and drops them at the end, and time moves by advancing the emulator's
clock, never by sleeping.

Settling and the progress bound K
---------------------------------
At the end of each scenario the inputs stop changing (no more queries, OOMs, user DDL, row
changes or faults). The clock then advances 3700 s, past the rate-limit window (3600 s), the
longest backoff (capped at 3600 s), any cooldown and lease TTL the scenario used, and then K+2
cycles run, each after a further 2000 s (more than the slowest hydration, 60 s for 25cc, and
the longest idle_after_s used, 1800 s). K = 2: a target size needs one cycle to create its
replica and, once that replica is hydrated, one more to retire the others (and the burst); an
idle cluster is suspended in the first cycle after idle_after_s, or the second when the first
created a replica (a new replica restarts the idle clock, per the contract). So after K cycles
every target is reached (or the cluster is suspended on purpose), every idle cluster is
suspended, and cycles K+1 and K+2 plan nothing: no oscillation. Over the whole settle stretch
(config, activity, catalog and windows unchanged) a cluster is suspended at most once and
nothing is created after that suspend (liveness: no flap, cooldowns included); a cluster whose
schedule window opens or closes during the stretch is exempt (its windows changed the answer).
"""

from __future__ import annotations

import os
import random
import traceback
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from mzsupport import q, server_now
from safety_gate import Gate
from safety_invariants import Invariants, K, Violation
from safetysupport import FIGURES, Observer, last_user_activity, truth

from mz_schedctl_provider.emulator.control import Emulator

pytestmark = pytest.mark.usefixtures("tables")

DEFAULT_SEED = 20260611
SETTLE_FIRST_S = 3700
SETTLE_ROUND_S = 2000


def scenario_count(config: pytest.Config) -> int:
    if config.getoption("--safety-long"):
        return 5000
    return int(os.environ.get("MZ_SCHEDCTL_SAFETY_SCENARIOS", "200"))


def base_seed() -> int:
    return int(os.environ.get("MZ_SCHEDCTL_SAFETY_SEED", str(DEFAULT_SEED)))


class Scenario(Invariants):
    """One random history over fresh clusters, with every invariant checked as it goes."""

    def __init__(
        self,
        emu: Emulator,
        obs: Observer,
        user: psycopg.Connection[Any],
        gate: Gate,
        index: int,
        seed: int,
    ) -> None:
        super().__init__(emu, obs, user, gate, index, seed)
        self.driver = self.rng.choice(("psycopg", "psycopg2"))
        FIGURES[f"step:driver_{self.driver}"] += 1
        self.db = self.connect()
        self.last_view = None

    def teardown(self) -> None:
        self.db.close()
        super().teardown()

    # Settling -------------------------------------------------------------------------------

    def settle(self) -> None:
        """Inputs stop; see the module docstring for K."""
        self.gate.finish()
        if self.sample_rate == 0:
            self.sample_rate_step()
        self.advance(SETTLE_FIRST_S)
        planned: list[dict[str, int]] = []
        suspends: dict[str, list[int]] = {g.id: [] for g in self.groups}
        sent: dict[str, list[tuple[int, str]]] = {g.id: [] for g in self.groups}
        verdicts: dict[str, set[bool | None]] = {g.id: set() for g in self.groups}
        for i in range(K + 2):
            self.advance(SETTLE_ROUND_S)
            now = server_now(self.obs)
            for g in self.groups:
                verdicts[g.id].add(g.schedule_off(now))
            plan = self.apply_cycle("settle")
            per: dict[str, int] = {}
            for c in plan["clusters"]:
                n = sum(1 for a in c["actions"] if a["status"] in ("planned", "deferred"))
                per[c["cluster_id"]] = n
            planned.append(per)
            view = self.last_view
            assert view is not None
            for g in self.groups:
                if g.id in view.suspended:
                    suspends[g.id].append(i)
                sent[g.id] += [(i, d.kind) for d in view.ddl if d.cluster == g.name and d.ok]
            self.check_history()
        for g in self.groups:
            if len(verdicts[g.id]) > 1:
                FIGURES["invariant:no_flap_exempt_window_changed"] += 1
                continue
            late = [p.get(g.id, 0) for p in planned[K:]]
            self.check(
                "quiescence",
                late == [0, 0],
                f"{g.name!r}: no quiescence: actions planned per settle cycle "
                f"{[p.get(g.id, 0) for p in planned]}",
            )
            self.check(
                "liveness_no_flap",
                len(suspends[g.id]) <= 1
                and not any(i > suspends[g.id][0] for i, _ in sent[g.id] if suspends[g.id])
                and not any(i >= K for i, _ in sent[g.id]),
                f"{g.name!r}: with nothing changing, suspended in cycles {suspends[g.id]} and"
                f" sent {sent[g.id]}",
            )
        now = server_now(self.obs)
        final = truth(self.obs, [g.id for g in self.groups])
        for g in self.groups:
            t = final[g.id]
            ours = self.serving(g, t.replicas)
            suspended = not ours and self.suspend_permitted(g, t, now)
            target, burst = g.config("target_size"), g.config("burst")
            # A source's cluster takes one replica: no zero-downtime resize (the plan says so).
            if target is not None and not suspended and g.objects != "source":
                size = target["target_size"]
                self.check(
                    "liveness_target_reached",
                    any(t.replicas[n] == size for n in t.hydrated),
                    f"{g.name!r}: target {size} not reached within {K} cycles: {t.replicas}",
                )
            if burst is not None:
                # "drop it as soon as another one is hydrated"
                fresh = self.created[g.id]
                bursts = {
                    n
                    for n, s in t.replicas.items()
                    if s == burst["burst_replica_size"] and fresh.get(n, ("", ""))[1] == "fresh"
                }
                self.check(
                    "liveness_burst_dropped",
                    not (bursts and t.hydrated - bursts),
                    f"{g.name!r}: burst still there beside a hydrated replica: {t.replicas}",
                )
            idle = g.config("idle_suspend")
            if idle is not None and self.suspend_permitted(g, t, now):
                self.check(
                    "liveness_idle_suspended",
                    not ours,
                    f"{g.name!r}: idle for over idle_after_s but not suspended within {K} "
                    f"cycles: {t.replicas}",
                )

    def resume_probe(self) -> None:
        """Liveness after an idle-driven suspend: a query on each such cluster (refused), after
        losing the state half the time (wipe-state), must be served within K cycles of
        showing up in the statement log."""
        due = [g for g in self.groups if g.idle_suspended and g.may_execute()]
        if not due:
            return
        self.step_kind("resume_probe")
        if self.rng.random() < 0.5:
            self.wipe_state_step()
        for g in due:
            try:
                self.user.execute(f"SET cluster = {q(g.name)}")
                self.user.execute("SELECT * FROM safety_probe").fetchall()
                self.log(f"query on {g.name!r}: ok")
            except psycopg.Error as exc:
                self.log(f"query on {g.name!r}: refused ({str(exc).strip()[:60]})")
            g.resume_due, g.resume_cycles = last_user_activity(self.obs, g.id), 0
        self.advance(6)  # the next flush of the statement log
        for _ in range(K):
            self.apply_cycle("settle")
            self.advance(5)
        for g in due:
            self.check(
                "liveness_resume_within_K",
                g.resume_due is None,
                f"{g.name!r}: the refused query was not served within {K} cycles",
            )

    # Driver ---------------------------------------------------------------------------------

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.14:
            seconds = self.rng.choice((5, 20, 40, 70, 200, 700, 2000))
            self.advance(seconds)
            self.step_kind("advance")
            self.log(f"advance {seconds}s")
        elif r < 0.32:
            self.user_step()
        elif r < 0.42:
            self.change_row(self.rng.choice(self.managed_groups()))
        elif r < 0.58:
            self.apply_cycle("apply")
        elif r < 0.64:
            self.apply_cycle("kill")
        elif r < 0.69:
            self.apply_cycle("fault")
        elif r < 0.73:
            self.apply_cycle("persist_fails")
        elif r < 0.77:
            self.apply_cycle("crash")
        elif r < 0.81:
            self.wipe_state_step()
        elif r < 0.83:
            self.edited_plan_step()
        elif r < 0.85:
            self.contended_step()
        elif r < 0.89:
            self.sample_rate_step()
        elif r < 0.94:
            self.dry_cycle()
        else:
            self.paused_cycle()
        FIGURES["steps"] += 1
        self.check_history()

    def run(self, steps: int) -> None:
        self.setup()
        for _ in range(steps):
            self.step()
        self.settle()
        self.resume_probe()


BATCH = 25  # scenarios per test item: progress shows, and each item stays within the timeout


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "batch" in metafunc.fixturenames:
        count = scenario_count(metafunc.config)
        only = os.environ.get("MZ_SCHEDCTL_SAFETY_ONLY")  # replay one scenario by index
        if only:
            batches = [[int(only)]]
        else:
            batches = [list(range(b, min(b + BATCH, count))) for b in range(0, count, BATCH)]
        metafunc.parametrize(
            "batch", batches, ids=[f"{b[0]}-{b[-1]}" if b else "none" for b in batches]
        )


@pytest.fixture(scope="module")
def world(emulator: Emulator) -> Iterator[tuple[psycopg.Connection[Any], Observer]]:
    """What every scenario shares: strategy rows on system clusters (the controller must
    still never touch them), a table for user queries, a user session and an observer."""
    for cid in ("s1", "s2"):
        emulator.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, 'target_size', '{\"target_size\": \"100cc\"}')",
            (cid,),
        )
    emulator.execute("CREATE TABLE IF NOT EXISTS safety_probe (a int)")
    Gate.install(emulator)
    user = psycopg.connect(emulator.url, autocommit=True, application_name="safety-user")
    obs = Observer(emulator)
    yield user, obs
    user.close()
    obs.close()
    emulator.execute("DELETE FROM mz_cluster_strategies")


def test_randomized_histories_keep_every_invariant(
    emulator: Emulator, world: tuple[psycopg.Connection[Any], Observer], batch: list[int]
) -> None:
    seed0 = base_seed()
    user, obs = world
    for index in batch:
        seed = random.Random(f"{seed0}/{index}").randrange(2**32)
        scenario = Scenario(emulator, obs, user, Gate(emulator), index, seed)
        try:
            scenario.run(steps=scenario.rng.randint(6, 12))
        except Exception as exc:
            trace = "\n  ".join(scenario.trace)
            detail = "" if isinstance(exc, Violation) else traceback.format_exc()
            pytest.fail(
                f"scenario {index} failed: {exc}\n"
                f"reproduce: MZ_SCHEDCTL_SAFETY_SEED={seed0} MZ_SCHEDCTL_SAFETY_ONLY={index}"
                f" .venv/bin/python -m pytest tests/safety/test_randomized.py\n"
                f"steps:\n  {trace}\n{detail}",
                pytrace=False,
            )
        finally:
            scenario.teardown()
        if os.environ.get("MZ_SCHEDCTL_SAFETY_TRACE"):
            print(f"scenario {index}:\n  " + "\n  ".join(scenario.trace))
        FIGURES["scenarios"] += 1
    FIGURES["seed"] = seed0
