"""What every strategy is: a pure function with a priority, keys, its own state, and the
facts the planner must know about it, declared rather than looked up by name.

Like Materialize's in-database cluster controller (each strategy declares the signals it
needs), a strategy declares here whether it applies to managed clusters, whether it empties a
cluster on purpose (suspend), how far back it needs activity, and which sizes it holds (so
two rows that contradict each other are found without naming either). Its params are typed:
``StrategySpec[P]`` builds a ``P`` and runs on that same ``P``, so no strategy asserts it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from ..config import KeySpec, Values
from ..desired import Desired
from ..facts import ClusterContext
from ..models import Finding, JsonObject

P = TypeVar("P")
P_contra = TypeVar("P_contra", contravariant=True)


@dataclass(frozen=True)
class StrategyResult:
    """What a strategy decided: desired replicas, its new state, and why."""

    desired: Desired
    state: JsonObject
    reasons: tuple[str, ...]
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class SizeClaim:
    """A replica size a row's config holds, for the planner's cross-row check.

    ``steady``: kept for good (target_size). Not steady: a transient replica (a burst) that a
    steady claim of the same size on the same cluster would be mistaken for, and keep forever.
    """

    key: str
    size: str
    steady: bool
    # What the transient replica is called in the error, e.g. "a burst".
    what: str = "a replica"


@dataclass(frozen=True)
class NameClaim:
    """A replica name a row's config holds, for the planner's cross-row check.

    ``steady``: the name of a replica kept for good (target_size's ``replica_name``). Not
    steady: a transient replica's name (a burst's); one equal to a steady name would make the
    kept replica be taken for the transient one, or the other way round (the resize never
    happens, or the kept replica is dropped as a finished burst).
    """

    key: str
    name: str
    steady: bool
    what: str = "a replica"


class RunStrategy(Protocol[P_contra]):
    """(config, cluster facts, own previous state, now, desired-so-far) -> result."""

    def __call__(
        self,
        *,
        params: P_contra,
        ctx: ClusterContext,
        state: JsonObject,
        now: datetime,
        desired: Desired,
        row_updated_at: datetime | None,
    ) -> StrategyResult: ...


class Configured(Protocol):
    """A strategy bound to one row's validated params: what the planner holds per row."""

    @property
    def spec(self) -> StrategyInfo: ...

    def run(
        self,
        *,
        ctx: ClusterContext,
        state: JsonObject,
        now: datetime,
        desired: Desired,
        row_updated_at: datetime | None,
    ) -> StrategyResult: ...

    def activity_lookback_s(self) -> float | None: ...

    def size_claims(self) -> tuple[SizeClaim, ...]: ...

    def name_claims(self) -> tuple[NameClaim, ...]: ...


class StrategyInfo(Protocol):
    """The declarations of a registered strategy, whatever its params type."""

    @property
    def name(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def keys(self) -> Mapping[str, KeySpec]: ...
    @property
    def experimental(self) -> bool: ...
    @property
    def not_applicable_to_managed(self) -> str | None: ...
    @property
    def suspends_on_purpose(self) -> bool: ...

    def configure(self, values: Values) -> Configured: ...


@dataclass(frozen=True)
class Bound(Generic[P]):
    """``StrategySpec[P]`` with its ``P``: run, lookback and claims need no cast."""

    spec: StrategySpec[P]
    params: P

    def run(
        self,
        *,
        ctx: ClusterContext,
        state: JsonObject,
        now: datetime,
        desired: Desired,
        row_updated_at: datetime | None,
    ) -> StrategyResult:
        return self.spec.run(
            params=self.params,
            ctx=ctx,
            state=state,
            now=now,
            desired=desired,
            row_updated_at=row_updated_at,
        )

    def activity_lookback_s(self) -> float | None:
        lookback = self.spec.activity_lookback
        return lookback(self.params) if lookback is not None else None

    def size_claims(self) -> tuple[SizeClaim, ...]:
        claims = self.spec.size_claims
        return claims(self.params) if claims is not None else ()

    def name_claims(self) -> tuple[NameClaim, ...]:
        claims = self.spec.name_claims
        return claims(self.params) if claims is not None else ()


@dataclass(frozen=True)
class StrategySpec(Generic[P]):
    """A registered strategy: name, priority (lower runs first), keys, builder, function,
    and what the planner must know about it."""

    name: str
    priority: int
    keys: Mapping[str, KeySpec]
    build: Callable[[Values], P]
    run: RunStrategy[P]
    # Experimental strategies run only when the planner is called with experimental=True.
    experimental: bool = False
    # Why the strategy cannot act on a managed cluster (its row gets a warning, no action);
    # None: it applies (on the replica-set model, turned into ALTER CLUSTER by managed.py).
    not_applicable_to_managed: str | None = None
    # Empties the cluster on purpose (suspend): a later keep-on strategy may undo its removals.
    suspends_on_purpose: bool = False
    # How far back (seconds) the signals must read activity for these params; None: no need.
    activity_lookback: Callable[[P], float | None] | None = None
    # The sizes these params hold (see SizeClaim); None: none.
    size_claims: Callable[[P], tuple[SizeClaim, ...]] | None = None
    # The replica names these params hold (see NameClaim); None: none.
    name_claims: Callable[[P], tuple[NameClaim, ...]] | None = None

    def configure(self, values: Values) -> Configured:
        return Bound(spec=self, params=self.build(values))
