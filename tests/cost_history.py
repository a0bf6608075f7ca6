"""A known cost history on the emulator (the cost report's known-answer test, its CLI tests
and its browser test): three unmanaged clusters, four hours, every row back-dated through the
emulator's control functions (replica history, statement log) and the controller's own audit
table, exactly as a real past would have left them.

Times in minutes from the anchor A (the window is A .. A+240; sizes 25cc 0.25, 50cc 0.5,
100cc 1, 200cc 2 credits/h):

cost_a (idle_suspend): r1 100cc A-60 .. A+60 (dropped by idle_suspend), r1 100cc again from
  A+150 (created by idle_suspend); refused queries at A+120:00, +120:20, +120:50 (one cold
  start) and A+140 (another); a dry-run audit row at A+30 (never executed).
cost_b (target_size + burst): r1 25cc A-120 .. A+90 (dropped by target_size), r50 50cc from
  A+60 (created by target_size), burst 200cc A+60 .. A+75 (created and dropped by burst).
cost_c (people only): r1 50cc from A-30, manual 100cc A+120 .. A+180, no executed action.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

CLUSTERS = ("cost_a", "cost_b", "cost_c")
FILTER = "cost_.*"
WINDOW_H = 4


@dataclass(frozen=True)
class History:
    anchor: datetime
    until: datetime
    ids: dict[str, str]


def _audit(
    emu: Any,
    cid: str,
    name: str,
    *,
    at: datetime,
    strategy: str,
    kind: str,
    replica: str,
    size: str,
    executed: bool = True,
) -> None:
    """An action's intent 2 s before ``at`` and its outcome 1 s after, as apply writes them
    (the DDL runs between); a not-executed action has its outcome only (a dry run)."""
    aid = str(uuid.uuid4())
    sql = f'{"CREATE" if kind == "create_replica" else "DROP"} CLUSTER REPLICA "{name}"."{replica}"'
    rows = [("outcome", executed, at + timedelta(seconds=1))]
    if executed:
        rows.insert(0, ("intent", None, at - timedelta(seconds=2)))
    for phase, done, when in rows:
        ctx = {
            "cycle_id": "history", "cluster_name": name, "strategy": strategy, "kind": kind,
            "replica": replica, "size": size, "phase": phase, "dry_run": not executed,
        }  # fmt: skip
        emu.execute(
            "INSERT INTO mz_cluster_strategy_actions (action_id, cluster_id, action_sql,"
            " decision_ctx, executed, error_message, created_at)"
            " VALUES (%s, %s, %s, %s::jsonb, %s, NULL, %s)",
            (aid, cid, sql, json.dumps(ctx), done, when),
        )


def build_history(emu: Any) -> History:
    """Create the three clusters (no replicas), move the clock 9 h on, back-date the rest."""
    for name in CLUSTERS:
        emu.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    ids = {
        str(n): str(i)
        for i, n in emu.execute(
            "SELECT id, name FROM mz_catalog.mz_clusters WHERE name LIKE 'cost\\_%'"
        )
    }
    emu.advance(9 * 3600)
    now = emu.execute("SELECT now()")[0][0]
    anchor = now.replace(second=0, microsecond=0) - timedelta(hours=5)

    def at(minutes: float) -> datetime:
        return anchor + timedelta(minutes=minutes)

    a, b = ids["cost_a"], ids["cost_b"]
    emu.backdate_replica("cost_a", "r1", "100cc", at(-60), at(60))
    emu.backdate_replica("cost_a", "r1", "100cc", at(150))
    _audit(emu, a, "cost_a", at=at(60), strategy="idle_suspend", kind="drop_replica",
           replica="r1", size="100cc")  # fmt: skip
    _audit(emu, a, "cost_a", at=at(150), strategy="idle_suspend", kind="create_replica",
           replica="r1", size="100cc")  # fmt: skip
    _audit(emu, a, "cost_a", at=at(30), strategy="target_size", kind="create_replica",
           replica="r200", size="200cc", executed=False)  # fmt: skip
    for minutes in (120, 120 + 20 / 60, 120 + 50 / 60, 140):
        emu.backdate_refused_query("cost_a", at(minutes))

    emu.backdate_replica("cost_b", "r1", "25cc", at(-120), at(90))
    emu.backdate_replica("cost_b", "r50", "50cc", at(60))
    emu.backdate_replica("cost_b", "burst", "200cc", at(60), at(75))
    _audit(emu, b, "cost_b", at=at(60), strategy="target_size", kind="create_replica",
           replica="r50", size="50cc")  # fmt: skip
    _audit(emu, b, "cost_b", at=at(60), strategy="burst", kind="create_replica",
           replica="burst", size="200cc")  # fmt: skip
    _audit(emu, b, "cost_b", at=at(75), strategy="burst", kind="drop_replica",
           replica="burst", size="200cc")  # fmt: skip
    _audit(emu, b, "cost_b", at=at(90), strategy="target_size", kind="drop_replica",
           replica="r1", size="25cc")  # fmt: skip

    emu.backdate_replica("cost_c", "r1", "50cc", at(-30))
    emu.backdate_replica("cost_c", "manual", "100cc", at(120), at(180))
    return History(anchor=anchor, until=at(240), ids=ids)
