"""What every strategy is: a pure function with a priority, keys and its own state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..config import KeySpec, Values
from ..desired import Desired
from ..facts import ClusterContext
from ..models import Finding, JsonObject


@dataclass(frozen=True)
class StrategyResult:
    """What a strategy decided: desired replicas, its new state, and why."""

    desired: Desired
    state: JsonObject
    reasons: tuple[str, ...]
    findings: tuple[Finding, ...] = ()


class RunStrategy(Protocol):
    """(config, cluster facts, own previous state, now, desired-so-far) -> result."""

    def __call__(
        self,
        *,
        params: object,
        ctx: ClusterContext,
        state: JsonObject,
        now: datetime,
        desired: Desired,
        row_updated_at: datetime | None,
    ) -> StrategyResult: ...


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy: name, priority (lower runs first), keys, builder, function."""

    name: str
    priority: int
    keys: Mapping[str, KeySpec]
    build: Callable[[Values], object]
    run: RunStrategy
    # Experimental strategies run only when the planner is called with experimental=True.
    experimental: bool = False
