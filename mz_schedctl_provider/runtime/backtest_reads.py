"""The backtest's reads: a fixed number of statements whatever the fleet size (reads only:
nothing is written), then the engine's replay (engine/backtest.py, backtest_report.py).

1. the window's end on the server's clock (unless given);
2. every user replica's lifetime (cost_reads.REPLICA_HISTORY);
3. the sizes (signals.py's reads: the size catalog and allowed_cluster_replica_sizes);
4. the clusters in the catalog (kind, size, replication factor: signals.py's statement);
5. their user objects (catalog_reads.USER_OBJECTS: sources and sinks block a suspend, and a
   cluster with none hydrates at once);
6. the recorded hydration times by cluster and size (mz_compute_hydration_statuses of the live
   replicas: Materialize keeps none for dropped ones);
7. every statement on a cluster from the window start minus the activity read window to the
   window end (the redacted statement history the signals stage reads), the controller's own
   excepted;
8. the strategy rows (the controller's table), unless a proposed set is given, and the
   statement log's sample rate.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from mz_schedctl_provider.engine.backtest import (
    BacktestRules,
    ClusterHistory,
    Statement,
)
from mz_schedctl_provider.engine.backtest_report import ClusterBacktest, backtest, report_json
from mz_schedctl_provider.engine.config import ConfigError, validate_row
from mz_schedctl_provider.engine.cost import ReplicaSpan, Window
from mz_schedctl_provider.engine.lookback import activity_lookback_s, activity_window_s
from mz_schedctl_provider.engine.models import Cluster, JsonObject, Size, StrategyRow
from mz_schedctl_provider.engine.strategies import REGISTRY
from mz_schedctl_provider.runtime.catalog_reads import USER_OBJECTS
from mz_schedctl_provider.runtime.cost_reads import REPLICA_HISTORY, replica_span
from mz_schedctl_provider.runtime.db import APPLICATION_NAME, Database
from mz_schedctl_provider.runtime.signals import (
    ACTIVITY_RELATION,
    CLUSTERS_READ,
    logging_sample_rate,
    read_sizes,
)
from mz_schedctl_provider.runtime.store import Store

HYDRATION_TIMES = (
    "SELECT r.cluster_id, r.size, max(extract(epoch FROM h.hydration_time))"
    " FROM mz_internal.mz_compute_hydration_statuses h"
    " JOIN mz_catalog.mz_cluster_replicas r ON r.id = h.replica_id"
    " WHERE h.hydration_time IS NOT NULL GROUP BY r.cluster_id, r.size"
)
STATEMENTS = (
    "SELECT cluster_id, began_at, finished_at, finished_status"
    f" FROM {ACTIVITY_RELATION}"
    " WHERE cluster_id IS NOT NULL AND coalesce(application_name, '') <> %s"
    " AND began_at > %s AND began_at < %s"
)


class StrategiesFileError(ValueError):
    """A proposed strategies file that does not validate: every fault, named."""


@dataclass(frozen=True)
class BacktestReport:
    window: Window
    rules: BacktestRules
    clusters: tuple[ClusterBacktest, ...]
    proposed: bool
    sizes: tuple[Size, ...] = ()

    def json(self) -> JsonObject:
        doc = report_json(self.clusters, self.window, self.rules)
        doc["strategies"] = "proposed (--strategies FILE)" if self.proposed else "current rows"
        doc["credits_per_hour"] = {s.name: s.credits_per_hour for s in self.sizes}
        return doc


def proposed_rows(
    doc: Any, *, clusters: dict[str, str], sizes: dict[str, Size]
) -> list[StrategyRow]:
    """Rows from a JSON list of {cluster (name or id), strategy_type, config}, validated as
    decide validates a stored row (config.validate_row); every fault is named."""
    if not isinstance(doc, list):
        raise StrategiesFileError("the strategies file must hold a JSON list of rows")
    by_name = {name: cid for cid, name in clusters.items()}
    rows: list[StrategyRow] = []
    faults: list[str] = []
    for i, item in enumerate(doc):
        where = f"row {i + 1}"
        if not isinstance(item, dict) or set(item) - {"cluster", "strategy_type", "config"}:
            faults.append(f"{where}: needs exactly the keys cluster, strategy_type, config")
            continue
        ref, kind, config = item.get("cluster"), item.get("strategy_type"), item.get("config")
        cid = by_name.get(ref) if isinstance(ref, str) else None
        cid = cid or (ref if isinstance(ref, str) and ref in clusters else None)
        if cid is None:
            faults.append(f"{where}: unknown cluster {ref!r}")
            continue
        spec = REGISTRY.get(kind) if isinstance(kind, str) else None
        if spec is None:
            faults.append(
                f"{where}: unknown strategy_type {kind!r} (known: {', '.join(sorted(REGISTRY))})"
            )
            continue
        row = StrategyRow(cluster_id=cid, strategy_type=spec.name, config=config)
        try:
            validate_row(row=row, cluster_name=clusters[cid], keys=spec.keys, sizes=sizes)
        except ConfigError as exc:
            faults.append(f"{where}: {exc}")
            continue
        rows.append(row)
    if faults:
        raise StrategiesFileError("; ".join(faults))
    return rows


def read_backtest(
    db: Database,
    store: Store,
    *,
    hours: float = 168.0,
    until: datetime | None = None,
    filter_clusters: str | None = None,
    strategies: Any = None,
    rules: BacktestRules | None = None,
) -> BacktestReport:
    """Replay ``hours`` ending at ``until`` (default: the server's now()) for the current rows,
    or for ``strategies`` (the parsed JSON of a proposed set)."""
    end = until if until is not None else db.query("SELECT now()")[0][0]
    window = Window(start=end - timedelta(hours=hours), end=end)
    spans = [replica_span(r) for r in db.query(REPLICA_HISTORY, purpose="reading replica history")]
    sizes = read_sizes(db)
    size_map = {s.name: s for s in sizes}
    cluster_rows = db.query(CLUSTERS_READ)
    names = {str(r[0]): str(r[1]) for r in cluster_rows}
    if strategies is None:
        rows = store.read_strategies()
    else:
        rows = proposed_rows(strategies, clusters=names, sizes=size_map)
    pattern = re.compile(filter_clusters) if filter_clusters else None
    wanted = {
        r.cluster_id
        for r in rows
        if r.cluster_id in names and (pattern is None or pattern.fullmatch(names[r.cluster_id]))
    }
    objects: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cid, kind, _oid in db.query(USER_OBJECTS):
        objects[str(cid)][str(kind)] += 1
    hydration: dict[str, dict[str, float]] = defaultdict(dict)
    for cid, size, seconds in db.query(HYDRATION_TIMES):
        if seconds is not None:
            hydration[str(cid)][str(size)] = float(seconds)
    read_s = activity_window_s(activity_lookback_s(rows, sizes=size_map))
    statements: dict[str, list[Statement]] = defaultdict(list)
    since = window.start - timedelta(seconds=read_s)
    for cid, began, finished, status in db.query(
        STATEMENTS, (APPLICATION_NAME, since, window.end), purpose="reading statement history"
    ):
        statements[str(cid)].append(Statement(began, finished, refused=status == "error"))
    by_cluster: dict[str, list[ReplicaSpan]] = defaultdict(list)
    for span in spans:
        by_cluster[span.cluster_id].append(span)
    rate = logging_sample_rate(db)
    histories = [
        ClusterHistory(
            cluster=_cluster(row, objects.get(str(row[0]), {})),
            spans=tuple(by_cluster.get(str(row[0]), ())),
            statements=tuple(statements.get(str(row[0]), ())),
            hydration_s=dict(hydration.get(str(row[0]), {})),
        )
        # By name: the catalog's order is no order.
        for row in sorted(cluster_rows, key=lambda r: (str(r[1]), str(r[0])))
        if str(row[0]) in wanted
    ]
    base = rules or BacktestRules()
    # Idle detection is blind without statement logging, in the replay as in a cycle.
    rules = replace(base, logging_visible=rate is not None and rate > 0)
    results = backtest(
        histories=histories,
        rows=[r for r in rows if r.cluster_id in wanted],
        sizes=sizes,
        window=window,
        rules=rules,
    )
    return BacktestReport(
        window=window,
        rules=rules,
        clusters=tuple(results),
        proposed=strategies is not None,
        sizes=tuple(sizes),
    )


def load_strategies_file(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StrategiesFileError(f"the strategies file is not JSON: {exc}") from None


def _cluster(row: tuple[Any, ...], objects: dict[str, int]) -> Cluster:
    cid, name, managed, size, factor, schedule = row
    return Cluster(
        id=str(cid),
        name=str(name),
        managed=bool(managed),
        size=size,
        replication_factor=None if factor is None else int(factor),
        schedule_type=schedule,
        is_system=str(cid).startswith("s"),
        indexes=objects.get("index", 0),
        materialized_views=objects.get("materialized_view", 0),
        sources=objects.get("source", 0),
        sinks=objects.get("sink", 0),
    )
