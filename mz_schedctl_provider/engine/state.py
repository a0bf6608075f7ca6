"""State rows: version 2 payload, each strategy under its own key.

Payload: ``{"strategies": {<name>: {...}}, "owned": [names], "backoff": {...},
"failed_resize": {...}}`` (the last two only when present). Strategy
keys hold what the strategy returned plus ``last_action_at`` (its cooldown anchor), which
only persist sets, after that strategy's actions succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from .codec import Codec, Rules
from .facts import parse_ts
from .models import (
    Backoff,
    ClusterState,
    FailedResize,
    Finding,
    JsonObject,
    JsonValue,
    StateRow,
)

STATE_VERSION = 2
LAST_ACTION_KEY = "last_action_at"
MAX_ERROR_CHARS = 200

# The payload as written (state rows, and the plan's prev_state / state): the codec's, from
# ClusterState's type hints; absent parts are left out (compact), strategies sorted by name.
STATE_RULES: dict[type[Any], Rules] = {
    ClusterState: Rules(
        name="state",
        omit_default=frozenset({"owned", "backoff", "failed_resize"}),
        sorted_keys=frozenset({"strategies"}),
        schema={
            "failed_resize": {
                "description": "managed clusters: the last graceful resize that timed out "
                "(counted once) and how many in a row for that size"
            }
        },
    ),
    Backoff: Rules(truncate={"last_error": MAX_ERROR_CHARS}, schema={"failures": {"minimum": 1}}),
    FailedResize: Rules(schema={"failures": {"minimum": 1}}),
}
_CODEC = Codec(STATE_RULES)


def newest_row(rows: Iterable[StateRow], cluster_id: str) -> StateRow | None:
    """Newest state row of a cluster (no upsert in Materialize: the newest one wins)."""
    mine = [r for r in rows if r.cluster_id == cluster_id]
    if not mine:
        return None
    floor = datetime.min.replace(tzinfo=timezone.utc)
    # Newest updated_at wins; among equals (or no timestamps) the last row read.
    return max(enumerate(mine), key=lambda p: (p[1].updated_at or floor, p[0]))[1]


def load_state(row: StateRow | None) -> tuple[ClusterState, Finding | None]:
    """The state to decide from; another version (the predecessor wrote 1) gives a fresh one."""
    if row is None:
        return ClusterState(), None
    if row.state_version != STATE_VERSION:
        return ClusterState(), Finding(
            kind="state_reset",
            severity="info",
            message=(
                f"ignored a state row of version {row.state_version} (this controller writes "
                f"version {STATE_VERSION}, e.g. mz-clusterctl wrote 1): starting from a fresh state"
            ),
            code="state_reset",
        )
    return state_from_payload(row.payload), None


def state_from_payload(payload: JsonValue) -> ClusterState:
    """Lenient parse: malformed parts are dropped rather than failing the cluster."""
    if not isinstance(payload, dict):
        return ClusterState()
    raw_strategies = payload.get("strategies")
    strategies: dict[str, JsonObject] = {}
    if isinstance(raw_strategies, dict):
        strategies = {k: v for k, v in raw_strategies.items() if isinstance(v, dict)}
    raw_owned = payload.get("owned")
    owned = tuple(n for n in raw_owned if isinstance(n, str)) if isinstance(raw_owned, list) else ()
    return ClusterState(
        strategies=strategies,
        owned=owned,
        backoff=backoff_from(payload.get("backoff")),
        failed_resize=failed_resize_from(payload.get("failed_resize")),
    )


def failed_resize_from(raw: JsonValue) -> FailedResize | None:
    if not isinstance(raw, dict):
        return None
    key, size, failures = raw.get("key"), raw.get("size"), raw.get("failures")
    if not isinstance(key, str) or not isinstance(size, str):
        return None
    if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
        return None
    return FailedResize(key=key, size=size, failures=failures)


def backoff_from(raw: JsonValue) -> Backoff | None:
    if not isinstance(raw, dict):
        return None
    failures, retry_at, error = (
        raw.get("failures"),
        parse_ts(raw.get("retry_at")),
        raw.get("last_error"),
    )
    if not isinstance(failures, int) or isinstance(failures, bool) or retry_at is None:
        return None
    return Backoff(failures=failures, retry_at=retry_at, last_error=str(error or ""))


def state_to_payload(state: ClusterState) -> JsonObject:
    return _CODEC.encode(state)


def last_action_at(state: ClusterState, strategy: str) -> datetime | None:
    return parse_ts(state.strategies.get(strategy, {}).get(LAST_ACTION_KEY))
