"""The "Materialize clusters" page (mz_schedctl_provider/plugins/cost_page.py) in a real Airflow:
on 3.3 the plugin, found through its ``airflow.plugins`` entry point, adds a nav entry and a
FastAPI app whose page needs an authenticated user and shows the cost report read through the
``materialize_default`` connection as a hook outside a task sees it (AIRFLOW_CONN_*), or says
where it looked when that connection is missing; on 2.11 it registers nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from afsupport import airflow_major
from cost_history import build_history


def _ours(airflow_home: Path) -> dict[str, Any]:
    from airflow import plugins_manager

    infos = [p for p in plugins_manager.get_plugin_info() if p["name"] == "mz_schedctl_cost"]
    assert len(infos) == 1, [p["name"] for p in plugins_manager.get_plugin_info()]
    import_errors = getattr(plugins_manager, "get_import_errors", lambda: {})()
    # pytest puts the repo on sys.path, where `pip install -e` left an egg-info: the same
    # entry point is found twice and Airflow skips the second one. Nothing else may fail.
    real = {k: v for k, v in import_errors.items() if "already registered" not in v}
    assert not real, real
    return infos[0]


def test_airflow_2_registers_no_page(airflow_home: Path) -> None:
    if airflow_major() >= 3:
        pytest.skip("Airflow 3: see test_page_in_the_nav_and_its_app")
    info = _ours(airflow_home)
    assert not info.get("fastapi_apps") and not info.get("external_views")
    assert not info.get("appbuilder_views") and not info.get("flask_blueprints")


@pytest.fixture(scope="module")
def client(airflow_home: Path) -> Any:
    if airflow_major() < 3:
        pytest.skip("Airflow 2.11: no page, the CLI report only")
    from airflow.api_fastapi.app import init_auth_manager
    from fastapi.testclient import TestClient

    from mz_schedctl_provider.plugins.cost_page import URL_PREFIX, MaterializeClustersPlugin

    init_auth_manager()  # as the API server does at start-up, before it mounts plugin apps
    (app,) = (a["app"] for a in MaterializeClustersPlugin.fastapi_apps)
    assert MaterializeClustersPlugin.fastapi_apps[0]["url_prefix"] == URL_PREFIX
    return TestClient(app)


def test_page_in_the_nav_and_its_app(airflow_home: Path, client: Any) -> None:
    info = _ours(airflow_home)
    (view,) = info["external_views"]
    assert (view["name"], view["destination"], view["href"]) == (
        "Materialize clusters",
        "nav",
        "mz-schedctl/",
    )
    assert [a["url_prefix"] for a in info["fastapi_apps"]] == ["/mz-schedctl"]
    # Airflow's own authentication guards the page: no cookie, no token, no report; a token
    # that is not this Airflow's is refused too.
    assert client.get("/").status_code == 401
    bad = client.get("/", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code in (401, 403), bad.status_code


@pytest.fixture(scope="module")
def token(client: Any) -> str:
    """A real JWT from this Airflow's auth manager (SimpleAuthManager), as the UI holds one."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = get_auth_manager()
    return str(manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin")))


def _get(client: Any, token: str, **params: Any) -> Any:
    return client.get("/", params=params, headers={"Authorization": f"Bearer {token}"})


def test_page_shows_the_report_from_the_env_connection(
    emulator: Any, mz_conn: str, client: Any, token: str
) -> None:
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    db = Database(emulator.connect())
    try:
        Store(db).bootstrap()
    finally:
        db.close()
    build_history(emulator)
    page = _get(client, token, hours=24)
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert f"Data: connection materialize_default (127.0.0.1:{emulator.port}/materialize)" in html
    for name in ("cost_a", "cost_b", "cost_c"):
        assert f"<td>{name}</td>" in html
    assert html.count('class="plotly-graph-div"') >= 3
    assert "refused queries on a cluster no more than 60 s apart count once" in html


def test_page_says_where_it_looked_without_the_connection(
    client: Any, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MATERIALIZE_DEFAULT", raising=False)
    page = _get(client, token)
    assert page.status_code == 200
    assert "No connection <code>materialize_default</code> found." in page.text
    assert "AIRFLOW_CONN_MATERIALIZE_DEFAULT" in page.text
