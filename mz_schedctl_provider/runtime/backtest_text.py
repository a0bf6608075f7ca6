"""The backtest as a terminal table, from its JSON document (engine/backtest_report.py), so the
table, the JSON and the HTML never disagree."""

from __future__ import annotations

from typing import Any

from mz_schedctl_provider.engine.models import JsonObject

COLUMNS = (
    ("cluster", "<"),
    ("strategies", "<"),
    ("recorded", ">"),
    ("simulated", ">"),
    ("saved", ">"),
    ("suspends", ">"),
    ("resumes", ">"),
    ("cold starts", ">"),
    ("max wait", ">"),
    ("flaps", ">"),
    ("deferred", ">"),
)


def wait_text(c: dict[str, Any]) -> str:
    """The longest wait of a cold start, in seconds; "never" if one was not served in time."""
    waits = [s["wait_s"] for s in c["cold_starts"]]
    if not waits:
        return "-"
    if any(w is None for w in waits):
        return "never"
    return f"{max(waits):g}s"


def row_cells(c: dict[str, Any]) -> list[str]:
    return [
        str(c["name"]),
        ",".join(c["strategies"]),
        f"{c['recorded_credits']:.3f}",
        f"{c['simulated_credits']:.3f}",
        f"{c['saved']:.3f}",
        str(len(c["suspends"])),
        str(len(c["resumes"])),
        str(len(c["cold_starts"])),
        wait_text(c),
        str(c["flaps"]),
        str(c["deferred"]),
    ]


def table_lines(doc: JsonObject) -> list[str]:
    """The table, a total, then what each cluster ran into, what cannot be replayed and the
    rules."""
    window: dict[str, Any] = doc["window"]  # type: ignore[assignment]
    clusters: list[dict[str, Any]] = doc["clusters"]  # type: ignore[assignment]
    t: dict[str, Any] = doc["totals"]  # type: ignore[assignment]
    rows = [[name for name, _ in COLUMNS], *(row_cells(c) for c in clusters)]
    rows.append(
        [
            "TOTAL", "", f"{t['recorded_credits']:.3f}", f"{t['simulated_credits']:.3f}",
            f"{t['saved']:.3f}", str(t["suspends"]), str(t["resumes"]), str(t["cold_starts"]),
            "", str(t["flaps"]), str(t["deferred"]),
        ]
    )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if align == "<" else cell.rjust(w)
            for cell, w, (_, align) in zip(r, widths, COLUMNS, strict=True)
        ).rstrip()

    lines = [
        f"BACKTEST  {window['start']} .. {window['end']}  ({window['hours']:g} h, "
        f"{doc.get('strategies', 'current rows')}; credits; nothing was written)",
        *(fmt(r) for r in rows),
        "",
    ]
    for c in clusters:
        skipped = c["cycles_skipped"]
        lines.append(
            f"{c['name']}: {c['cycles_run']} cycles replayed, {skipped} skipped (unchanged)"
        )
        lines.extend(f"  error: {e}" for e in c["errors"])
    lines.append("")
    lines.append("NOT REPLAYED")
    lines.extend(f"  {x}" for x in doc["cannot_replay"])  # type: ignore[union-attr]
    lines.append("")
    lines.append("DEFINITIONS")
    definitions: dict[str, str] = doc["definitions"]  # type: ignore[assignment]
    lines.extend(f"  {k}: {v}" for k, v in definitions.items())
    return lines
