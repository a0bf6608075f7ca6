"""The desired replica set that strategies pass along, in priority order."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .models import DesiredReplica
from .reasons import ReasonCode


@dataclass(frozen=True)
class Removal:
    """A replica a strategy wants gone, and why."""

    name: str
    strategy: str
    reason: str
    code: ReasonCode
    # What was wanted before the removal, so a later strategy can undo it (schedule keep-on).
    replica: DesiredReplica | None = None


@dataclass(frozen=True)
class Desired:
    """Replicas wanted so far; removals remember who removed what, for the reasons."""

    replicas: tuple[DesiredReplica, ...] = ()
    removed: tuple[Removal, ...] = ()
    # Set by a strategy that empties the cluster on purpose (suspend); cleared by any add.
    empty_on_purpose: bool = False
    # Managed clusters: the REPLICATION FACTOR to resume with (remembered at suspend by the
    # strategy that resumes); None: as many as the replicas wanted.
    replication_factor: int | None = None

    def get(self, name: str) -> DesiredReplica | None:
        return next((r for r in self.replicas if r.name == name), None)

    def names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.replicas)

    def add(self, replica: DesiredReplica) -> Desired:
        """Want this replica (replacing a same-named wish); undoes an earlier removal."""
        kept = tuple(r for r in self.replicas if r.name != replica.name)
        return replace(
            self,
            replicas=(*kept, replica),
            removed=tuple(r for r in self.removed if r.name != replica.name),
            empty_on_purpose=False,
        )

    def keep(
        self, name: str, *, strategy: str, reason: str, until_replaced: bool, code: ReasonCode
    ) -> Desired:
        """Re-label a wanted replica with a new reason (who keeps it and why)."""
        current = self.get(name)
        if current is None:
            return self
        return self.add(
            replace(
                current,
                strategy=strategy,
                reason=reason,
                until_replaced=until_replaced,
                code=code,
            )
        )

    def remove(self, name: str, *, strategy: str, reason: str, code: ReasonCode) -> Desired:
        current = self.get(name)
        if current is None:
            return self
        return replace(
            self,
            replicas=tuple(r for r in self.replicas if r.name != name),
            removed=(
                *(r for r in self.removed if r.name != name),
                Removal(name=name, strategy=strategy, reason=reason, code=code, replica=current),
            ),
        )

    def emptied(self, *, strategy: str, reason: str, code: ReasonCode) -> Desired:
        """Nothing wanted, on purpose (suspend)."""
        out = self
        for r in self.replicas:
            out = out.remove(r.name, strategy=strategy, reason=reason, code=code)
        return replace(out, empty_on_purpose=True)

    def removal(self, name: str) -> Removal | None:
        return next((r for r in self.removed if r.name == name), None)
