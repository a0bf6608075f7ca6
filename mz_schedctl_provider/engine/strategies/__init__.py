"""Strategy registry: name -> spec, run in priority order (0 first).

Open for more strategies: ``register`` one (schedule has priority 4, after idle_suspend). The
planner, managed.py and the signals reader ask the registered specs what they declare
(base.StrategySpec), never a strategy by name.
"""

from __future__ import annotations

from . import burst, idle_suspend, schedule, shrink_to_fit, target_size
from .base import (
    Configured,
    NameClaim,
    RunStrategy,
    SizeClaim,
    StrategyInfo,
    StrategyResult,
    StrategySpec,
)

REGISTRY: dict[str, StrategyInfo] = {}


def register(spec: StrategyInfo) -> None:
    """Add a strategy; a name or priority can be taken only once."""
    if spec.name in REGISTRY:
        raise ValueError(f"strategy {spec.name!r} is already registered")
    if any(s.priority == spec.priority for s in REGISTRY.values()):
        raise ValueError(f"priority {spec.priority} is already taken")
    REGISTRY[spec.name] = spec


def suspending_strategies() -> frozenset[str]:
    """Registered strategies that empty a cluster on purpose (their removals may be undone
    by a later keep-on strategy, e.g. a schedule window)."""
    return frozenset(s.name for s in REGISTRY.values() if s.suspends_on_purpose)


for _module in (target_size, shrink_to_fit, burst, idle_suspend, schedule):
    register(_module.SPEC)

__all__ = [
    "REGISTRY",
    "Configured",
    "NameClaim",
    "RunStrategy",
    "SizeClaim",
    "StrategyInfo",
    "StrategyResult",
    "StrategySpec",
    "register",
    "suspending_strategies",
]
