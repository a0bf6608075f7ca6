"""The pure engine: signals -> decide -> plan, and plan + apply result -> states.

No I/O, no clock, no airflow, no database driver: time comes from ``Signals.now``.
"""

from .config import ConfigError
from .contract import (
    SCHEMA_VERSION,
    ContractError,
    apply_result_from_json,
    apply_result_to_json,
    load_schema,
    plan_from_json,
    plan_to_json,
    signals_from_json,
    signals_to_json,
)
from .facts import is_crash, is_oom, replica_hydrated
from .models import (
    Action,
    ActionResult,
    ApplyResult,
    Backoff,
    Cluster,
    ClusterPlan,
    ClusterState,
    DesiredReplica,
    Finding,
    Plan,
    RecentAction,
    Replica,
    Signals,
    Size,
    StateRow,
    StrategyRow,
)
from .planner import decide, next_states
from .reasons import REASON_CODES, ReasonCode
from .safety import DEFAULT_LIMITS, Limits
from .state import STATE_VERSION, state_to_payload

__all__ = [
    "DEFAULT_LIMITS",
    "REASON_CODES",
    "SCHEMA_VERSION",
    "STATE_VERSION",
    "Action",
    "ActionResult",
    "ApplyResult",
    "Backoff",
    "Cluster",
    "ClusterPlan",
    "ClusterState",
    "ConfigError",
    "ContractError",
    "DesiredReplica",
    "Finding",
    "Limits",
    "Plan",
    "ReasonCode",
    "RecentAction",
    "Replica",
    "Signals",
    "Size",
    "StateRow",
    "StrategyRow",
    "apply_result_from_json",
    "apply_result_to_json",
    "decide",
    "is_crash",
    "is_oom",
    "load_schema",
    "next_states",
    "plan_from_json",
    "plan_to_json",
    "replica_hydrated",
    "signals_from_json",
    "signals_to_json",
    "state_to_payload",
]
