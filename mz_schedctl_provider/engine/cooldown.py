"""What a strategy in its cooldown may still decide (behaviour.md: "A cooldown never delays a
resume caused by activity. It delays only that strategy's next action, and while it runs no
other strategy may undo that strategy's last action (no flap).").

Skipping a cooling strategy altogether is wrong: its last decision then vanishes for the
cooldown, and the strategies before it undo it (idle_suspend suspends, target_size re-creates
the replica two minutes later, idle_suspend suspends again an hour later: a flap). So the
cooling strategy still runs, and its result stands when either

- it asks for no DDL of its own: every change it makes to the desired set agrees with the
  catalog as it is (it drops a wish for a replica that does not exist, or keeps one that does),
  which is how it holds its last action against the others' wishes; or
- the cluster serves nothing (none of its owned replicas run): whatever brings it back is a
  resume, and a cooldown never delays a resume.

Otherwise (it would create or drop a replica, or change a managed cluster's factor, of its
own accord) its result is discarded for this cycle and the desired set passes through: that
next action is what the cooldown delays.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .desired import Desired
from .facts import ClusterContext
from .models import ClusterState
from .state import last_action_at

if TYPE_CHECKING:
    from .row_config import RowConfig


def asks_for_ddl(*, ctx: ClusterContext, before: Desired, after: Desired) -> bool:
    """Whether the strategy's change (``before`` -> ``after``) would make DDL of its own."""
    old = {r.name: r.size for r in before.replicas}
    new = {r.name: r.size for r in after.replicas}
    for name in old.keys() | new.keys():
        if old.get(name) == new.get(name):
            continue  # unchanged, or only relabelled (who keeps it and why)
        replica = ctx.cluster.replica(name)
        current = replica.size if replica is not None else None
        if new.get(name) != current:
            return True  # it wants this replica other than it is: a create or a drop
    # A managed cluster's factor is DDL too (ALTER CLUSTER ... REPLICATION FACTOR).
    return ctx.cluster.managed and after.replication_factor != before.replication_factor


def may_decide_while_cooling(*, ctx: ClusterContext, before: Desired, after: Desired) -> bool:
    """Whether a cooling strategy's result stands (see the module docstring)."""
    if not ctx.owned_replicas():
        return True  # nothing serves: holding the suspend, or a resume; neither waits
    return not asks_for_ddl(ctx=ctx, before=before, after=after)


def cooldown_until(*, state: ClusterState, config: RowConfig) -> datetime | None:
    """End of the strategy's cooldown, measured from its own last action; None if not cooling."""
    last = last_action_at(state, config.spec.name)
    if last is None or config.common.cooldown_s <= 0:
        return None
    return last + timedelta(seconds=config.common.cooldown_s)
