"""The backtest as one self-contained HTML file (plotly inlined once, as the cost report:
cost_html.py): the table, then per cluster the recorded and the simulated credits per hour
over the window with the simulated suspends, resumes and cold starts. Built from the JSON
document, like the terminal table."""

from __future__ import annotations

import html
from typing import Any

from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime.backtest_text import COLUMNS, row_cells
from mz_schedctl_provider.runtime.cost_html import _STYLE, _plotly


def _credit_steps(
    replicas: list[dict[str, Any]], credits: dict[str, float], start: str, end: str
) -> tuple[list[str], list[float]]:
    """Credits per hour as a step line over the window, from replica lifetimes."""
    points = sorted(
        {start, end}
        | {
            t
            for r in replicas
            for t in (r["created_at"], r["dropped_at"])
            if t is not None and start < t < end
        }
    )
    xs, ys = [], []
    for p in points:
        live = [
            r for r in replicas
            if r["created_at"] <= p and (r["dropped_at"] is None or r["dropped_at"] > p)
        ]  # fmt: skip
        xs.append(p)
        ys.append(sum(credits.get(r["size"], 0.0) for r in live))
    return xs, ys


def _cold_text(s: dict[str, Any]) -> str:
    n = s["queries"]
    wait = "never served in the window" if s["wait_s"] is None else f"waits {s['wait_s']:g} s"
    return f"cold start: {n} quer{'y' if n == 1 else 'ies'}, {wait}"


def _figure(c: dict[str, Any], doc: JsonObject, credits: dict[str, float]) -> Any:
    go, _ = _plotly()
    window: dict[str, Any] = doc["window"]  # type: ignore[assignment]
    fig = go.Figure()
    xs, ys = _credit_steps(c["replicas"], credits, window["start"], window["end"])
    fig.add_trace(
        go.Scatter(x=xs, y=ys, name="simulated credits/h", line={"shape": "hv", "color": "#0072B2"},
                   fill="tozeroy", fillcolor="rgba(0,114,178,0.15)")
    )  # fmt: skip
    rec = c.get("recorded_replicas", [])
    if rec:
        xs, ys = _credit_steps(rec, credits, window["start"], window["end"])
        fig.add_trace(
            go.Scatter(x=xs, y=ys, name="recorded credits/h",
                       line={"shape": "hv", "dash": "dash", "color": "#555"})
        )  # fmt: skip
    # Markers above the highest line (at 0 they would hide under the axis).
    top = max([*ys, *(credits.get(r["size"], 0.0) for r in c["replicas"]), 0.1])
    for kind, symbol, colour in (
        ("suspends", "triangle-down", "#444"),
        ("resumes", "triangle-up", "#1b7f3b"),
    ):
        if c[kind]:
            fig.add_trace(
                go.Scatter(x=c[kind], y=[top * 1.1] * len(c[kind]), mode="markers", name=kind,
                           marker={"symbol": symbol, "size": 11, "color": colour})
            )  # fmt: skip
    if c["cold_starts"]:
        fig.add_trace(
            go.Scatter(
                x=[s["first_at"] for s in c["cold_starts"]],
                y=[top * 1.22] * len(c["cold_starts"]), mode="markers", name="cold starts",
                marker={"symbol": "x", "size": 11, "color": "#b42318"},
                text=[_cold_text(s) for s in c["cold_starts"]],
                hoverinfo="text+x",
            )
        )  # fmt: skip
    fig.update_layout(
        height=300, margin={"l": 50, "r": 20, "t": 30, "b": 30}, template="plotly_white",
        yaxis_title="credits/h",
    )  # fmt: skip
    fig.update_yaxes(rangemode="tozero")
    return fig


def backtest_html(doc: JsonObject, *, notice: str = "") -> str:
    """The whole page."""
    credits: dict[str, float] = doc.get("credits_per_hour") or {}  # type: ignore[assignment]
    window: dict[str, Any] = doc["window"]  # type: ignore[assignment]
    t: dict[str, Any] = doc["totals"]  # type: ignore[assignment]
    clusters: list[dict[str, Any]] = doc["clusters"]  # type: ignore[assignment]
    head = "<tr>" + "".join(f"<th>{html.escape(n)}</th>" for n, _ in COLUMNS) + "</tr>"
    body_rows = [
        "<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in row_cells(c)) + "</tr>"
        for c in clusters
    ]
    cls = "saved" if t["saved"] >= 0 else "spent"
    parts = [
        "<h1>Backtest: what the strategies would have done</h1>",
        f'<p class="note">{html.escape(notice)}</p>' if notice else "",
        f"<p>{html.escape(window['start'])} .. {html.escape(window['end'])} "
        f"({window['hours']:g} h, {html.escape(str(doc.get('strategies', 'current rows')))}): "
        f"<b>{t['recorded_credits']:.3f}</b> credits recorded, "
        f"<b>{t['simulated_credits']:.3f}</b> simulated, "
        f'<b class="{cls}">{t["saved"]:.3f}</b> saved; {t["suspends"]} suspend(s), '
        f"{t['resumes']} resume(s), {t['cold_starts']} cold start(s), {t['flaps']} flap(s), "
        f"{t['deferred']} deferred action(s). Nothing was written.</p>",
        f'<table id="backtest">{head}{"".join(body_rows)}</table>',
    ]
    first = True
    for c in clusters:
        parts.append(f"<h2>{html.escape(str(c['name']))}</h2>")
        if c["errors"]:
            parts.append(
                '<ul class="warning">'
                + "".join(f"<li>{html.escape(e)}</li>" for e in c["errors"])
                + "</ul>"
            )
        fig = _figure(c, doc, credits)
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False})
        )
        first = False
    cannot: list[str] = doc["cannot_replay"]  # type: ignore[assignment]
    definitions: dict[str, str] = doc["definitions"]  # type: ignore[assignment]
    parts.append(
        "<h2>Not replayed</h2><ul>"
        + "".join(f"<li>{html.escape(x)}</li>" for x in cannot)
        + "</ul><h2>Definitions</h2><dl>"
        + "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in definitions.items()
        )
        + "</dl>"
    )
    body = "\n".join(p for p in parts if p)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Backtest</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
