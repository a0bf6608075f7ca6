"""Strategy registry: name -> spec, run in priority order (0 first).

Open for more strategies: ``register`` one (schedule has priority 4, after idle_suspend).
"""

from __future__ import annotations

from . import burst, idle_suspend, schedule, shrink_to_fit, target_size
from .base import RunStrategy, StrategyResult, StrategySpec

REGISTRY: dict[str, StrategySpec] = {}


def register(spec: StrategySpec) -> None:
    """Add a strategy; a name or priority can be taken only once."""
    if spec.name in REGISTRY:
        raise ValueError(f"strategy {spec.name!r} is already registered")
    if any(s.priority == spec.priority for s in REGISTRY.values()):
        raise ValueError(f"priority {spec.priority} is already taken")
    REGISTRY[spec.name] = spec


for _module in (target_size, shrink_to_fit, burst, idle_suspend, schedule):
    register(_module.SPEC)

__all__ = ["REGISTRY", "RunStrategy", "StrategyResult", "StrategySpec", "register"]
