"""The cost report as a terminal table, from its JSON document (engine/cost.py report_json),
so the table, the JSON and the HTML never disagree."""

from __future__ import annotations

from typing import Any

from mz_schedctl_provider.engine.models import JsonObject

_COLUMNS = (
    ("cluster", "<"),
    ("credits", ">"),
    ("baseline", ">"),
    ("saved", ">"),
    ("serving", ">"),
    ("suspended", ">"),
    ("bursting", ">"),
    ("resizing", ">"),
    ("suspends", ">"),
    ("resumes", ">"),
    ("cold starts", ">"),
    ("refused", ">"),
)


def hours(seconds: float) -> str:
    """Seconds as hours and minutes: 5400 -> 1h30m."""
    minutes = round(seconds / 60.0)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _row(c: dict[str, Any]) -> list[str]:
    kinds = [m["kind"] for m in c["markers"]]
    return [
        str(c["name"]),
        f"{c['credits']:.3f}",
        f"{c['baseline']['credits']:.3f}",
        f"{c['savings']:.3f}",
        *(hours(c["seconds"][k]) for k in ("serving", "suspended", "bursting", "resizing")),
        str(kinds.count("suspend")),
        str(kinds.count("resume")),
        str(len(c["cold_starts"])),
        str(c["refused_queries"]),
    ]


def table_lines(doc: JsonObject) -> list[str]:
    """The table, one line per cluster, a total, then each cluster's reasons and the rules."""
    window: dict[str, Any] = doc["window"]  # type: ignore[assignment]
    clusters: list[dict[str, Any]] = doc["clusters"]  # type: ignore[assignment]
    totals: dict[str, Any] = doc["totals"]  # type: ignore[assignment]
    rows = [[name for name, _ in _COLUMNS], *(_row(c) for c in clusters)]
    rows.append(
        [
            "TOTAL",
            f"{totals['credits']:.3f}",
            f"{totals['baseline_credits']:.3f}",
            f"{totals['savings']:.3f}",
            *([""] * 4),
            str(sum(int(_row(c)[8]) for c in clusters)),
            str(sum(int(_row(c)[9]) for c in clusters)),
            str(totals["cold_starts"]),
            str(totals["refused_queries"]),
        ]
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if align == "<" else cell.rjust(w)
            for cell, w, (_, align) in zip(r, widths, _COLUMNS, strict=True)
        ).rstrip()

    lines = [
        f"COST REPORT  {window['start']} .. {window['end']}  ({window['hours']:g} h,"
        " credits; time as hours and minutes)",
        fmt(rows[0]),
        *(fmt(r) for r in rows[1:-1]),
        fmt(rows[-1]),
        "",
    ]
    for c in clusters:
        lines.append(f"{c['name']}:")
        lines.extend(f"  {reason}" for reason in c["reasons"])
        by = ", ".join(f"{k} {v:.3f}" for k, v in c["credits_by"].items())
        if by:
            lines.append(f"  credits by who made the replicas: {by}")
    lines.append("")
    lines.append("DEFINITIONS")
    definitions: dict[str, str] = doc["definitions"]  # type: ignore[assignment]
    lines.extend(f"  {k}: {v}" for k, v in definitions.items())
    return lines
