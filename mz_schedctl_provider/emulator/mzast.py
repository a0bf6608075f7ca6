"""The statement objects the Materialize DDL parser (``mzsql``) yields, and the variables the
emulator owns (session and system)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

# ---------------------------------------------------------------------------------------------
# Statement objects
# ---------------------------------------------------------------------------------------------


@dataclass
class OptionValue:
    """A WITH/option-list value: a string, number, bool, word phrase and/or nested option list."""

    text: str | None = None  # string/number text or word phrase ("on refresh", "manual")
    kind: str = "none"  # 'string' | 'number' | 'words' | 'list' | 'none'
    options: list[Option] | None = None  # nested list, e.g. ON REFRESH (...)
    values: list[str] = field(default_factory=list)  # for comma lists (ALTER SYSTEM)


@dataclass
class Option:
    name: str  # lower-case, words joined by one space: "replication factor"
    value: OptionValue


QualifiedName = tuple[str, ...]


@dataclass
class ReplicaDef:
    name: str
    options: list[Option]


@dataclass
class CreateCluster:
    name: str
    options: list[Option]
    replicas: list[ReplicaDef] | None  # None: managed form


@dataclass
class CreateClusterReplica:
    cluster: str
    name: str
    options: list[Option]


@dataclass
class DropCluster:
    names: list[str]
    if_exists: bool
    cascade: bool


@dataclass
class DropClusterReplica:
    targets: list[tuple[str, str]]
    if_exists: bool


@dataclass
class AlterCluster:
    name: str
    if_exists: bool
    action: str  # 'set' | 'reset' | 'rename'
    options: list[Option] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)
    with_options: list[Option] = field(default_factory=list)
    new_name: str | None = None


@dataclass
class SetVariable:
    name: str
    value: str | None  # None: DEFAULT
    local: bool = False


@dataclass
class ResetVariable:
    name: str


@dataclass
class ShowVariable:
    name: str


@dataclass
class ShowClusters:
    pass


@dataclass
class ShowClusterReplicas:
    pass


@dataclass
class AlterSystem:
    name: str
    values: list[str] | None  # None: RESET / DEFAULT


@dataclass
class CreateIndex:
    name: str | None
    default: bool
    cluster: str | None
    on: QualifiedName
    columns: list[str]
    if_not_exists: bool
    sql: str


@dataclass
class CreateMaterializedView:
    name: QualifiedName
    cluster: str | None
    query: str
    if_not_exists: bool
    or_replace: bool
    sql: str


@dataclass
class CreateSource:
    name: QualifiedName
    cluster: str | None
    source_type: str  # 'load-generator' | 'kafka' | 'postgres' | ...
    generator: str | None  # COUNTER, AUCTION, ... for load generators
    if_not_exists: bool
    sql: str


@dataclass
class CreateSink:
    name: QualifiedName
    cluster: str | None
    from_name: QualifiedName
    sink_type: str
    if_not_exists: bool
    sql: str


@dataclass
class DropItems:
    kind: str  # 'index' | 'materialized-view' | 'source' | 'sink'
    names: list[QualifiedName]
    if_exists: bool
    cascade: bool


Statement = Union[  # noqa: UP007 - a runtime alias; `|` of many classes reads worse
    CreateCluster,
    CreateClusterReplica,
    DropCluster,
    DropClusterReplica,
    AlterCluster,
    SetVariable,
    ResetVariable,
    ShowVariable,
    ShowClusters,
    ShowClusterReplicas,
    AlterSystem,
    CreateIndex,
    CreateMaterializedView,
    CreateSource,
    CreateSink,
    DropItems,
]

# Session variables the emulator owns; SET/RESET/SHOW of other names go to PostgreSQL.
SESSION_VARS = frozenset({"cluster", "cluster_replica", "statement_logging_sample_rate"})
# System variables (ALTER SYSTEM / SHOW); values live in mz_emulator.settings.
SYSTEM_VARS = frozenset(
    {
        "statement_logging_max_sample_rate",
        "statement_logging_default_sample_rate",
        "allowed_cluster_replica_sizes",
        "max_replicas_per_cluster",
    }
)
