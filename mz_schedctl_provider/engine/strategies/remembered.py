"""A remembered replica set: what idle_suspend and schedule bring back on resume.

One type for both, with the state payload format they always wrote (so old state rows load
as they are): ``"remembered": [{"name": ..., "size": ...}, ...]`` and, for managed clusters,
``"replication_factor": n``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..desired import Desired
from ..facts import ClusterContext
from ..models import DesiredReplica, JsonValue

REMEMBERED_KEY = "remembered"
FACTOR_KEY = "replication_factor"


@dataclass(frozen=True)
class RememberedReplicas:
    """Replica (name, size) pairs, in the order they were wanted."""

    replicas: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(cls, raw: JsonValue) -> RememberedReplicas | None:
        """The set in a payload's ``remembered`` value; None when there is no list. Items that
        are not ``{"name": str, "size": str}`` are dropped (lenient, like all state)."""
        if not isinstance(raw, list):
            return None
        pairs: list[tuple[str, str]] = []
        for item in raw:
            if not isinstance(item, dict):
                continue
            name, size = item.get("name"), item.get("size")
            if isinstance(name, str) and isinstance(size, str):
                pairs.append((name, size))
        return cls(tuple(pairs))

    @classmethod
    def of(cls, desired: Desired, *, stable_only: bool = False) -> RememberedReplicas:
        """The desired replicas; ``stable_only``: those not on their way out (all of them if
        every one is)."""
        keep = list(desired.replicas)
        if stable_only:
            keep = [r for r in desired.replicas if not r.until_replaced] or keep
        return cls(tuple((r.name, r.size) for r in keep))

    def dump(self) -> JsonValue:
        return [{"name": n, "size": s} for n, s in self.replicas]

    def restore(
        self, *, ctx: ClusterContext, desired: Desired, strategy: str, reason: str
    ) -> tuple[Desired, list[str]]:
        """Want the remembered replicas again: (desired, "'name' (size)" of each restored).
        A size Materialize no longer offers is left out: it would fail at apply time."""
        out = desired
        restored: list[str] = []
        for name, size in self.replicas:
            known = ctx.sizes.get(size)
            if known is None or not known.allowed:
                continue
            out = out.add(
                DesiredReplica(
                    name=name,
                    size=size,
                    strategy=strategy,
                    reason=reason,
                    code="resume_remembered",
                )
            )
            restored.append(f"{name!r} ({size})")
        return out, restored


def load_factor(raw: JsonValue) -> int | None:
    """A remembered replication factor: a positive integer, else None."""
    ok = isinstance(raw, int) and not isinstance(raw, bool) and raw > 0
    return raw if ok and isinstance(raw, int) else None
