"""How far back the signals must read statement activity: asked of the strategies.

The signals reader calls ``activity_lookback_s`` with the strategy rows it read, instead of
knowing which strategy reads activity and under which key (idle_suspend's idle_after_s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .config import ConfigError, validate_row
from .models import Size, StrategyRow
from .strategies import REGISTRY

# Statement history is read back a day, or this far beyond the longest lookback a strategy
# declares: the signals stage and the backtest read the same window.
DEFAULT_ACTIVITY_WINDOW_S = 86400
ACTIVITY_MARGIN_S = 3600


def activity_window_s(lookback_s: float | None) -> float:
    """How far back activity is read, for the strategies' longest lookback (None: none)."""
    if lookback_s is None or lookback_s <= 0:
        return float(DEFAULT_ACTIVITY_WINDOW_S)
    return float(max(DEFAULT_ACTIVITY_WINDOW_S, lookback_s + ACTIVITY_MARGIN_S))


def activity_lookback_s(
    rows: Iterable[StrategyRow], *, sizes: Mapping[str, Size] | None = None
) -> float | None:
    """The longest activity lookback any valid row declares; None when none does.

    A row that does not validate is skipped: decide reports it and never runs it. A disabled
    row still counts, so the window does not shrink and grow as rows are toggled. ``sizes``
    is needed only by strategies with size keys that also read activity (none today).
    """
    longest: float | None = None
    for row in rows:
        spec = REGISTRY.get(row.strategy_type)
        if spec is None:
            continue
        try:
            values = validate_row(row=row, cluster_name="", keys=spec.keys, sizes=sizes or {})
            seconds = spec.configure(values).activity_lookback_s()
        except (ConfigError, ArithmeticError, TypeError, ValueError, RecursionError):
            continue
        if seconds is not None and (longest is None or seconds > longest):
            longest = seconds
    return longest
