"""The cost report as one self-contained HTML file: plotly's JavaScript inlined once, every
chart's data inside, no link or script from the network, so it opens anywhere offline. The
Airflow page ("Materialize clusters") serves the same HTML.

Per cluster: replicas stacked by size over time (with suspend, resume and cold-start markers)
and credits per hour against the baseline. Built from the report's JSON document, like the
terminal table, so the three outputs never disagree."""

from __future__ import annotations

import html
from typing import Any

from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime.cost_text import hours

# One colour per replica size, in order of first appearance; colour-blind-safe (Okabe-Ito).
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1a1a1a; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.saved { color: #1b7f3b; font-weight: 600; } .spent { color: #b42318; font-weight: 600; }
.note { color: #555; font-size: 0.85rem; } .warning { color: #b42318; font-weight: 600; }
dl { font-size: 0.85rem; color: #333; } dt { font-weight: 600; margin-top: 0.4rem; }
"""


class ChartsUnavailable(RuntimeError):
    """plotly is not installed (the ``report`` extra)."""


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as exc:  # the extra is optional for the terminal and JSON outputs
        raise ChartsUnavailable(
            "the HTML report needs plotly: pip install 'mz-schedctl-provider[report]'"
        ) from exc
    return go, make_subplots


def _queries(n: int) -> str:
    return f"{n} refused quer{'y' if n == 1 else 'ies'}"


def _steps(segments: list[dict[str, Any]], value: Any) -> tuple[list[str], list[float]]:
    """A step line: each segment's value from its start, held to the last end."""
    xs = [s["start"] for s in segments]
    ys = [float(value(s)) for s in segments]
    if segments:
        xs.append(segments[-1]["end"])
        ys.append(ys[-1])
    return xs, ys


def _cluster_figure(c: dict[str, Any], colours: dict[str, str]) -> Any:
    go, make_subplots = _plotly()
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.6, 0.4],
        subplot_titles=("replicas by size", "credits per hour"),
    )
    segments: list[dict[str, Any]] = c["segments"]
    sizes = sorted({size for s in segments for size in s["replicas"]}, key=list(colours).index)
    for size in sizes:
        xs, ys = _steps(segments, lambda s, size=size: s["replicas"].get(size, 0))
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, name=size, stackgroup="replicas", line={"shape": "hv", "width": 0.5},
                fillcolor=colours[size], line_color=colours[size], legendgroup=size,
                hovertemplate=f"%{{y}} x {size}<extra></extra>",
            ),
            row=1, col=1,
        )  # fmt: skip
    # Markers above the stacked replicas (at 0 they would hide under the axis).
    top = max((sum(s["replicas"].values()) for s in segments), default=0) or 1
    marks = [
        ("suspend", "triangle-down", "#444", top * 1.12),
        ("resume", "triangle-up", "#1b7f3b", top * 1.12),
    ]
    for kind, symbol, colour, y in marks:
        found = [m for m in c["markers"] if m["kind"] == kind]
        if found:
            fig.add_trace(
                go.Scatter(
                    x=[m["at"] for m in found], y=[y] * len(found), mode="markers",
                    name=f"{kind}s", marker={"symbol": symbol, "size": 13, "color": colour},
                    text=[f"{kind} by {m['by']}" for m in found], hoverinfo="text+x",
                ),
                row=1, col=1,
            )  # fmt: skip
    if c["cold_starts"]:
        fig.add_trace(
            go.Scatter(
                x=[s["first_at"] for s in c["cold_starts"]],
                y=[top * 1.25] * len(c["cold_starts"]),
                mode="markers", name="cold starts",
                marker={"symbol": "x", "size": 12, "color": "#b42318"},
                text=[f"cold start: {_queries(s['queries'])}" for s in c["cold_starts"]],
                hoverinfo="text+x",
            ),
            row=1, col=1,
        )  # fmt: skip
    xs, ys = _steps(segments, lambda s: s["credits_per_hour"])
    fig.add_trace(
        go.Scatter(x=xs, y=ys, name="credits/h", line={"shape": "hv", "color": "#0072B2"},
                   fill="tozeroy", fillcolor="rgba(0,114,178,0.15)"),
        row=2, col=1,
    )  # fmt: skip
    if segments:
        base = float(c["baseline"]["credits_per_hour"])
        fig.add_trace(
            go.Scatter(x=[segments[0]["start"], segments[-1]["end"]], y=[base, base],
                       name="baseline credits/h", line={"dash": "dash", "color": "#555"}),
            row=2, col=1,
        )  # fmt: skip
    fig.update_layout(
        height=460, margin={"l": 50, "r": 20, "t": 40, "b": 30}, template="plotly_white"
    )
    fig.update_yaxes(rangemode="tozero")
    return fig


def _summary(doc: JsonObject) -> str:
    clusters: list[dict[str, Any]] = doc["clusters"]  # type: ignore[assignment]
    head = (
        "<tr><th>cluster</th><th>credits</th><th>baseline</th><th>saved</th><th>serving</th>"
        "<th>suspended</th><th>bursting</th><th>resizing</th><th>suspends</th><th>resumes</th>"
        "<th>cold starts</th><th>refused queries</th></tr>"
    )
    rows = []
    for c in clusters:
        kinds = [m["kind"] for m in c["markers"]]
        cls = "saved" if c["savings"] >= 0 else "spent"
        cells = [
            html.escape(str(c["name"])), f"{c['credits']:.3f}", f"{c['baseline']['credits']:.3f}",
            f'<span class="{cls}">{c["savings"]:.3f}</span>',
            *(hours(c["seconds"][k]) for k in ("serving", "suspended", "bursting", "resizing")),
            str(kinds.count("suspend")), str(kinds.count("resume")),
            str(len(c["cold_starts"])), str(c["refused_queries"]),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def report_html(doc: JsonObject, *, title: str = "Materialize clusters", notice: str = "") -> str:
    """The whole page. ``notice``: a line shown at the top (e.g. where the data came from)."""
    window: dict[str, Any] = doc["window"]  # type: ignore[assignment]
    totals: dict[str, Any] = doc["totals"]  # type: ignore[assignment]
    clusters: list[dict[str, Any]] = doc["clusters"]  # type: ignore[assignment]
    definitions: dict[str, str] = doc["definitions"]  # type: ignore[assignment]
    colours: dict[str, str] = {}
    for c in clusters:
        for s in c["segments"]:
            for size in s["replicas"]:
                colours.setdefault(size, _PALETTE[len(colours) % len(_PALETTE)])
    parts = [
        f"<h1>{html.escape(title)}: cost and savings</h1>",
        f'<p class="note">{html.escape(notice)}</p>' if notice else "",
        f"<p>{html.escape(window['start'])} .. {html.escape(window['end'])} "
        f"({window['hours']:g} h): <b>{totals['credits']:.3f}</b> credits used, "
        f"<b>{totals['baseline_credits']:.3f}</b> at the baseline, "
        f'<b class="{"saved" if totals["savings"] >= 0 else "spent"}">'
        f"{totals['savings']:.3f}</b> saved; {totals['cold_starts']} cold start(s), "
        f"{_queries(totals['refused_queries'])}.</p>",
        _summary(doc),
    ]
    first = True
    for c in clusters:
        fig = _cluster_figure(c, colours)
        parts.append(f"<h2>{html.escape(str(c['name']))}</h2>")
        parts.append(
            '<ul class="note">'
            + "".join(f"<li>{html.escape(r)}</li>" for r in c["reasons"])
            + "</ul>"
        )
        # plotly.js inlined once (no CDN: the file must open with no network).
        parts.append(
            fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False})
        )
        first = False
    if not clusters:
        parts.append("<p>No cluster had a replica in the window.</p>")
    parts.append(
        "<h2>Definitions</h2><dl>"
        + "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in definitions.items()
        )
        + "</dl>"
    )
    body = "\n".join(p for p in parts if p)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
