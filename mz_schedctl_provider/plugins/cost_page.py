"""The "Materialize clusters" page of Airflow 3.1+: the cost report (the same HTML as
``mz-schedctl report --html``) in Airflow's navigation.

Two parts, registered only on Airflow 3.1+ (on 2.11 the plugin registers nothing: the CLI
report only):

* ``fastapi_apps``: a FastAPI app mounted by the API server at ``/mz-schedctl``; its page
  needs an authenticated Airflow user (the UI's session cookie, or a bearer token);
* ``external_views``: the nav entry, which shows that page in the UI's frame.

Where its data comes from: the ``materialize_default`` connection as a hook outside a task
sees it. The API server has no task supervisor, so it resolves the connection through its
secrets backends: ``AIRFLOW_CONN_MATERIALIZE_DEFAULT`` in the API server's environment, or a
configured secrets backend. The page says so when the connection is missing.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's and the dependency's
# annotations at runtime, and Request is imported inside _app (to keep plugin load cheap).
import asyncio
from typing import Any

from airflow import __version__ as airflow_version
from airflow.plugins_manager import AirflowPlugin

CONN_ID = "materialize_default"
URL_PREFIX = "/mz-schedctl"
TITLE = "Materialize clusters"


def _version(text: str) -> tuple[int, int]:
    parts = [*text.split("."), "0"][:2]
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


SUPPORTED = _version(airflow_version) >= (3, 1)


def missing_connection_page(error: str) -> str:
    """The page when the connection cannot be found: what was looked up, and where."""
    import html

    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title>'
        '</head><body style="font-family: system-ui, sans-serif; margin: 1.5rem">'
        f"<h1>{TITLE}</h1><p><b>No connection <code>{CONN_ID}</code> found.</b></p>"
        "<p>This page reads the connection as a hook outside a task sees it: from the API "
        f"server's environment (<code>AIRFLOW_CONN_{CONN_ID.upper()}</code>) or a secrets "
        "backend configured for the API server. A connection saved only in Airflow's metadata "
        "database (the Connections page) is what tasks see, not necessarily this page.</p>"
        f"<p>Or run <code>mz-schedctl report --html report.html</code>.</p>"
        f'<p style="color: #555">{html.escape(error)}</p></body></html>'
    )


def render_page(hours: float) -> str:
    """The report read through the hook (blocking: run it off the event loop)."""
    from mz_schedctl_provider.hooks.materialize import MaterializeHook
    from mz_schedctl_provider.runtime.cost_html import report_html
    from mz_schedctl_provider.runtime.cost_reads import read_cost_report
    from mz_schedctl_provider.runtime.store import Store

    hook = MaterializeHook(materialize_conn_id=CONN_ID)
    try:
        conn = hook.connection
    except Exception as exc:  # AirflowNotFoundException, or a backend's own error
        return missing_connection_page(f"{type(exc).__name__}: {exc}")
    settings = hook.cycle_settings()
    db = hook.get_database()
    try:
        doc = read_cost_report(db, Store(db, schema=settings.schema), hours=hours).json()
    finally:
        db.close()
    where = f"{conn.host or 'localhost'}:{conn.port or 6875}/{conn.schema or 'materialize'}"
    notice = (
        f"Data: connection {CONN_ID} ({where}), as a hook outside a task sees it "
        "(the API server's environment or secrets backend)."
    )
    return report_html(doc, title=TITLE, notice=notice)


async def _authenticated(request: Any) -> None:
    """Airflow's own authentication (``get_user``: the UI's session cookie or a bearer token),
    resolved at request time: importing Airflow's API security module at plugin load would cost
    every Airflow process (scheduler, DAG processor, workers) seconds. Its dependencies are
    one level deep (the OAuth2 and bearer schemes), called here as FastAPI would."""
    import inspect

    from airflow.api_fastapi.core_api.security import get_user

    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(get_user).parameters.items():
        if name == "request":
            kwargs[name] = request
            continue
        dependency = getattr(param.default, "dependency", None)
        value = dependency(request) if dependency is not None else None
        kwargs[name] = await value if inspect.isawaitable(value) else value
    await get_user(**kwargs)


def _app() -> Any:
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.responses import HTMLResponse

    app = FastAPI(title=TITLE)

    async def user(request: Request) -> None:
        await _authenticated(request)

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(user)])
    async def page(hours: float = Query(24.0, gt=0, le=24 * 31)) -> HTMLResponse:
        return HTMLResponse(await asyncio.to_thread(render_page, hours))

    return app


class _LazyApps:
    """``fastapi_apps`` built on first read (by the API server): other Airflow processes load
    plugins too and never need FastAPI."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, obj: Any, owner: Any = None) -> list[dict[str, Any]]:
        if self._apps is None:
            self._apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": TITLE}]
        return self._apps


class MaterializeClustersPlugin(AirflowPlugin):
    """Registers the page on Airflow 3.1+, nothing on older releases."""

    name = "mz_schedctl_cost"
    if SUPPORTED:
        fastapi_apps = _LazyApps()
        external_views = [
            {
                "name": TITLE,
                "href": URL_PREFIX.lstrip("/") + "/",
                "destination": "nav",
                "url_route": "materialize-clusters",
            }
        ]
