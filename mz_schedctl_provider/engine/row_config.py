"""A cluster's strategy rows, made ready to run: the newest row per strategy, each validated
into a RowConfig (a faulty row is named, never raised), and the check of rows valid alone but
contradictory together. The planner (``decide``) runs what this returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .config import CommonConfig, ConfigError, Values, parse_common, validate_row
from .facts import PREDECESSOR_BURST_SUFFIX, iso
from .models import Cluster, Finding, Size, StrategyRow
from .strategies import REGISTRY, Configured, StrategyInfo


@dataclass(frozen=True)
class RowConfig:
    """A validated, enabled strategy row ready to run."""

    spec: StrategyInfo
    common: CommonConfig
    # The strategy bound to this row's typed params.
    strategy: Configured
    updated_at: datetime | None


def newest_rows(rows: Iterable[StrategyRow]) -> dict[str, list[StrategyRow]]:
    """The newest row per (cluster_id, strategy_type): Materialize has no upsert."""
    newest: dict[tuple[str, str], tuple[int, StrategyRow]] = {}
    for i, row in enumerate(rows):
        key = (row.cluster_id, row.strategy_type)
        seen = newest.get(key)
        if seen is None or _row_order(row, i) >= _row_order(seen[1], seen[0]):
            newest[key] = (i, row)
    out: dict[str, list[StrategyRow]] = {}
    for (cluster_id, _), (_, row) in sorted(newest.items()):
        out.setdefault(cluster_id, []).append(row)
    return out


def _row_order(row: StrategyRow, index: int) -> tuple[bool, str, int]:
    return (row.updated_at is not None, iso(row.updated_at) if row.updated_at else "", index)


def parse_rows(
    *, rows: list[StrategyRow], cluster: Cluster, sizes: Mapping[str, Size], experimental: bool
) -> tuple[list[RowConfig], list[str], list[Finding]]:
    """(configs, errors, findings): every faulty row is named; experimental ones may be off."""
    configs: list[RowConfig] = []
    errors: list[str] = []
    findings: list[Finding] = []
    for row in rows:
        spec = REGISTRY.get(row.strategy_type)
        if spec is None:
            err = ConfigError(
                cluster_id=cluster.id,
                cluster_name=cluster.name,
                strategy=row.strategy_type,
                key=None,
                message=f"unknown strategy (known: {', '.join(sorted(REGISTRY))})",
            )
            errors.append(str(err))
            continue
        try:
            values: Values = validate_row(
                row=row, cluster_name=cluster.name, keys=spec.keys, sizes=sizes
            )
        except ConfigError as err:
            errors.append(str(err))
            continue
        except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:
            # User data must never take the whole run down: a value no check foresaw is
            # still this row's error, named, and the other clusters go on.
            unforeseen = ConfigError(
                cluster_id=cluster.id,
                cluster_name=cluster.name,
                strategy=row.strategy_type,
                key=None,
                message=f"config could not be validated ({type(exc).__name__}: {exc})"[:300],
            )
            errors.append(str(unforeseen))
            continue
        if spec.experimental and not experimental:
            findings.append(
                Finding(
                    kind="experimental_off",
                    severity="warning",
                    strategy=spec.name,
                    message=(
                        f"{spec.name} is experimental and ignored: "
                        "run the planner with experimental=True"
                    ),
                    code="experimental_off",
                )
            )
            continue
        configs.append(
            RowConfig(
                spec=spec,
                common=parse_common(values),
                strategy=spec.configure(values),
                updated_at=row.updated_at,
            )
        )
    clash = cross_row_error(configs=configs, cluster=cluster)
    if clash is not None:
        errors.append(clash)
    return sorted(configs, key=lambda c: c.spec.priority), errors, findings


def cross_row_error(*, configs: list[RowConfig], cluster: Cluster) -> str | None:
    """Rows valid alone but contradictory together, from the sizes and names each declares it
    holds: a transient replica (a burst) of a size or a name another row keeps for good
    (target_size, a schedule window) would be taken for that row's replica: kept forever, or
    the resize never happens."""
    return _size_clash(configs=configs, cluster=cluster) or _name_clash(
        configs=configs, cluster=cluster
    )


def _name_clash(*, configs: list[RowConfig], cluster: Cluster) -> str | None:
    """A transient name equal to a kept one, or a kept name that reads as the predecessor's
    burst (``<cluster>_burst``, which burst recognises as its own)."""
    claims = [(c.spec.name, claim) for c in configs for claim in c.strategy.name_claims()]
    transient = [(name, claim) for name, claim in claims if not claim.steady]
    predecessor = f"{cluster.name}{PREDECESSOR_BURST_SUFFIX}"
    for name, claim in claims:
        if not claim.steady:
            continue
        for other_name, other in transient:
            if other_name == name:
                continue
            if other.name == claim.name:
                message = (
                    f"equals {other_name}'s {other.key} {other.name!r}: {claim.what} "
                    f"must not carry the name of {other.what}"
                )
            elif claim.name == predecessor:
                message = (
                    f"{claim.name!r} is the predecessor's burst name, which {other_name} "
                    f"drops as {other.what}: choose another name"
                )
            else:
                continue
            return str(
                ConfigError(
                    cluster_id=cluster.id,
                    cluster_name=cluster.name,
                    strategy=name,
                    key=claim.key,
                    message=message,
                )
            )
    return None


def _size_clash(*, configs: list[RowConfig], cluster: Cluster) -> str | None:
    claims = [(c.spec.name, claim) for c in configs for claim in c.strategy.size_claims()]
    steady = [(name, claim) for name, claim in claims if claim.steady]
    for name, claim in claims:
        if claim.steady:
            continue
        for other_name, other in steady:
            if other_name == name or other.size != claim.size:
                continue
            return str(
                ConfigError(
                    cluster_id=cluster.id,
                    cluster_name=cluster.name,
                    strategy=name,
                    key=claim.key,
                    message=(
                        f"equals {other.key} {other.size!r}: {claim.what} must be another size"
                    ),
                )
            )
    return None
