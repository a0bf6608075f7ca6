"""Strategy rows whose ``cluster_id`` names no cluster: a cluster's name typed where its id
belongs, a typo, or the leftovers of a dropped cluster. Such a row can never act, and silence
would let a user wait forever for it: each is reported, by row, as a plan-level warning (not a
run-failing error: a dropped cluster's leftovers must not fail every run from then on).

The signals stage keeps these rows (``stray_rows``) with the id and name of any cluster they
point at; decide turns them into findings (``unknown_cluster_findings``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .config import row_enabled
from .models import Finding, StrategyRow


def _hint(value: str, names: Mapping[str, str]) -> str | None:
    """The id of the cluster a wrong cluster_id most likely meant: its name, or its id in
    other case ("U7" for "u7")."""
    by_name = {name: cid for cid, name in names.items()}
    if value in by_name:
        return by_name[value]
    return next((cid for cid in sorted(names) if cid.casefold() == value.casefold()), None)


def _selected(pattern: re.Pattern[str] | None, value: str, hinted_name: str | None) -> bool:
    """Under a cluster filter, a row counts when the filter selects its value or the cluster
    it points at: the rest are outside the run."""
    if pattern is None:
        return True
    return any(pattern.fullmatch(n) for n in (value, hinted_name) if n is not None)


def stray_rows(
    *,
    rows: Iterable[StrategyRow],
    clusters: Mapping[str, str],
    pattern: re.Pattern[str] | None,
) -> tuple[tuple[StrategyRow, ...], dict[str, str]]:
    """(rows whose cluster_id is no cluster's id and in the filter's scope, id -> name of the
    clusters they point at). ``clusters``: id -> name of every cluster."""
    stray: list[StrategyRow] = []
    hinted: dict[str, str] = {}
    for row in rows:
        if row.cluster_id in clusters:
            continue
        hint = _hint(row.cluster_id, clusters)
        name = clusters[hint] if hint is not None else None
        if not _selected(pattern, row.cluster_id, name):
            continue
        stray.append(row)
        if hint is not None and name is not None:
            hinted[hint] = name
    return tuple(stray), hinted


def unknown_cluster_findings(
    *,
    rows: Mapping[str, list[StrategyRow]],
    clusters: Mapping[str, str],
    pattern: re.Pattern[str] | None,
) -> tuple[Finding, ...]:
    """One warning per enabled newest row whose cluster_id is no cluster's id. ``clusters``:
    id -> name of the clusters known (in scope, and those the signals name as hints)."""
    found: list[Finding] = []
    for cluster_id, cluster_rows in sorted(rows.items()):
        if cluster_id in clusters:
            continue
        hint = _hint(cluster_id, clusters)
        name = clusters[hint] if hint is not None else None
        if not _selected(pattern, cluster_id, name):
            continue
        found += [
            _finding(row=row, hint=hint, name=name) for row in cluster_rows if row_enabled(row)
        ]
    return tuple(found)


def _finding(*, row: StrategyRow, hint: str | None, name: str | None) -> Finding:
    what = f"strategy row {row.strategy_type!r}: cluster_id {row.cluster_id!r}"
    if hint is not None and name == row.cluster_id:
        why = f"is a cluster's name; its id is {hint}"
    elif hint is not None:
        why = f"is no cluster's id; did you mean {hint} ({name!r})?"
    else:
        why = "is no cluster's id (a typo, or the cluster was dropped)"
    return Finding(
        kind="unknown_cluster",
        severity="warning",
        strategy=row.strategy_type,
        message=f"{what} {why}: the row is ignored",
        details={"cluster_id": row.cluster_id, **({"hint": hint} if hint else {})},
        code="unknown_cluster",
    )
