"""MaterializeHook and PostgresHook reach the emulator through AIRFLOW_CONN_* variables, with the
driver this Airflow uses, and the session the controller needs; the password stays secret."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import PASSWORD, airflow_major, conn_json


@pytest.fixture
def custom_conn(emulator: Any, airflow_home: Path) -> Any:
    """A second connection with every extra set, including a cluster name with a space."""
    emulator.execute("CREATE CLUSTER \"ops cluster\" REPLICAS (r1 (SIZE = '25cc'))")
    os.environ["AIRFLOW_CONN_MZ_CUSTOM"] = conn_json(
        emulator.port,
        extra={
            "cluster": "ops cluster",
            "application_name": "mz-schedctl-test",
            "sslmode": "disable",
            "table_schema": "ops",
            "statement_timeout": 30,
            "lease_ttl_s": 600,
            "audit_retention_days": 3,
            "experimental": "true",
        },
    )
    yield "mz_custom"
    os.environ.pop("AIRFLOW_CONN_MZ_CUSTOM", None)
    emulator.execute('DROP CLUSTER "ops cluster" CASCADE')


def test_default_connection_opens_the_controllers_session(mz_conn: str) -> None:
    from mz_schedctl_provider.hooks.materialize import MaterializeHook

    hook = MaterializeHook()
    assert hook.get_conn_id() == "materialize_default"
    db = hook.get_database()
    try:
        # The driver PostgresHook uses on this Airflow: psycopg 3 on 3.x, psycopg2 on 2.11.
        driver = type(db.conn).__module__.split(".")[0]
        assert driver == ("psycopg" if airflow_major() >= 3 else "psycopg2")
        assert db.conn.autocommit is True
        assert db.query("SHOW application_name") == [("mz-schedctl",)]
        assert db.query("SHOW cluster") == [("quickstart",)]
        # Materialize's rule: DDL alone in its transaction. Autocommit makes this work.
        db.execute("CREATE TABLE hook_t (a int)")
        db.execute("INSERT INTO hook_t VALUES (1)")
        assert db.query("SELECT a FROM hook_t") == [(1,)]
    finally:
        db.close()
    settings = hook.cycle_settings()
    assert (settings.schema, settings.lease_ttl_s, settings.experimental) == ("public", 900, False)


def test_extras_set_cluster_timeout_application_name_and_settings(custom_conn: str) -> None:
    from mz_schedctl_provider.hooks.materialize import MaterializeHook

    hook = MaterializeHook(materialize_conn_id=custom_conn)
    db = hook.get_database()
    try:
        assert db.query("SHOW cluster") == [("ops cluster",)]
        assert db.query("SHOW application_name") == [("mz-schedctl-test",)]
        assert db.query("SHOW statement_timeout") == [("30s",)]
    finally:
        db.close()
    settings = hook.cycle_settings()
    assert settings.schema == "ops"
    assert settings.lease_ttl_s == 600
    assert settings.audit_retention_days == 3
    assert settings.experimental is True
    assert settings.holder.startswith("airflow@")


def test_test_connection_reports_success_and_failure_without_the_password(
    mz_conn: str, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from mz_schedctl_provider.hooks.materialize import MaterializeHook

    caplog.set_level(logging.DEBUG)
    ok, message = MaterializeHook().test_connection()
    assert ok, message
    assert "ok: session cluster: quickstart (1 replica)" in message
    os.environ["AIRFLOW_CONN_MZ_WRONG"] = conn_json(emulator.port, password=PASSWORD + "-wrong")
    try:
        ok, message = MaterializeHook(materialize_conn_id="mz_wrong").test_connection()
    finally:
        os.environ.pop("AIRFLOW_CONN_MZ_WRONG")
    assert not ok
    assert "password authentication failed" in message
    assert PASSWORD not in message
    assert PASSWORD not in caplog.text


def test_test_connection_names_a_session_cluster_that_does_not_exist(
    mz_conn: str, emulator: Any
) -> None:
    from mz_schedctl_provider.hooks.materialize import MaterializeHook

    os.environ["AIRFLOW_CONN_MZ_NOCLUSTER"] = conn_json(emulator.port, extra={"cluster": "nope"})
    try:
        ok, message = MaterializeHook(materialize_conn_id="mz_nocluster").test_connection()
    finally:
        os.environ.pop("AIRFLOW_CONN_MZ_NOCLUSTER")
    assert not ok
    assert message.startswith("Not ready for a cycle: session cluster"), message
    assert "cluster 'nope' does not exist" in message


def test_airflow_2_form_keys_never_reach_libpq(mz_conn: str, emulator: Any) -> None:
    """Airflow 2.11's "Test" button posts every custom field twice, prefixed and plain, blank
    ones included; a saved form may hold only prefixed keys. The hook reads both and hands
    libpq neither a prefixed key nor a blank one."""
    from mz_schedctl_provider.hooks.materialize import MaterializeHook

    prefix = "extra__materialize__"
    extra = {
        f"{prefix}cluster": "quickstart",
        "cluster": "quickstart",
        f"{prefix}lease_ttl_s": "600",
        "lease_ttl_s": "600",
        f"{prefix}audit_retention_days": "",
        "audit_retention_days": "",
        f"{prefix}statement_timeout": "45",
        f"{prefix}sslmode": "disable",
        "sslmode": "disable",
        f"{prefix}table_schema": "",
    }
    os.environ["AIRFLOW_CONN_MZ_FORM"] = conn_json(emulator.port, extra=extra)
    try:
        hook = MaterializeHook(materialize_conn_id="mz_form")
        kwargs = hook.connection_kwargs()
        ok, message = hook.test_connection()
        settings = hook.cycle_settings()
        db = hook.get_database()
        try:
            timeout = db.query("SHOW statement_timeout")
        finally:
            db.close()
    finally:
        os.environ.pop("AIRFLOW_CONN_MZ_FORM")
    assert not [k for k in kwargs if k.startswith("extra__")], kwargs
    assert kwargs["sslmode"] == "disable"
    assert ok, message
    assert (settings.lease_ttl_s, settings.audit_retention_days, settings.schema) == (
        600,
        7,
        "public",
    )
    assert timeout == [("45s",)]


def test_openlineage_namespace_is_materialize(mz_conn: str, emulator: Any) -> None:
    from mz_schedctl_provider.hooks.materialize import MaterializeHook, openlineage_parts

    hook = MaterializeHook()
    conn = hook.get_connection("materialize_default")
    expected = ("materialize", f"127.0.0.1:{emulator.port}", "materialize")
    assert openlineage_parts(conn.host, conn.port, conn.schema) == expected
    assert openlineage_parts(None, None, None) == ("materialize", "localhost:6875", "materialize")
    assert hook.get_openlineage_database_dialect(conn) == "postgres"
    try:
        import airflow.providers.openlineage.sqlparser  # noqa: F401
    except ImportError:
        return  # the openlineage provider is not in the pinned set; the parts are what it gets
    info = hook.get_openlineage_database_info(conn)
    assert (info.scheme, info.authority, info.database) == expected


def test_operators_and_sensor_template_the_conn_id() -> None:
    from mz_schedctl_provider.operators import materialize as ops
    from mz_schedctl_provider.sensors.materialize import MaterializeHydrationSensor

    classes = [
        ops.MaterializeSignalsOperator,
        ops.MaterializeDecideOperator,
        ops.MaterializeApplyOperator,
        ops.MaterializePersistOperator,
        ops.MaterializeWipeStateOperator,
        MaterializeHydrationSensor,
    ]
    for cls in classes:
        assert "materialize_conn_id" in cls.template_fields, cls.__name__


def test_postgres_hook_reaches_the_emulator_too(mz_conn: str, emulator: Any) -> None:
    """The plain PostgresHook (a postgres:// URI) works against the same endpoint."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    os.environ["AIRFLOW_CONN_MZ_AS_POSTGRES"] = (
        f"postgresql://materialize:{PASSWORD.replace(';', '%3B').replace(' ', '%20')}"
        f"@127.0.0.1:{emulator.port}/materialize"
    )
    try:
        hook = PostgresHook(postgres_conn_id="mz_as_postgres")
        assert hook.get_first("SELECT name FROM mz_catalog.mz_clusters WHERE id = 'u1'") == (
            "quickstart",
        )
    finally:
        os.environ.pop("AIRFLOW_CONN_MZ_AS_POSTGRES")


def test_uri_form_of_the_connection_works(emulator: Any, airflow_home: Path) -> None:
    """AIRFLOW_CONN_MATERIALIZE_DEFAULT as a materialize:// URI, extras in the query string."""
    from urllib.parse import quote

    from mz_schedctl_provider.hooks.materialize import MaterializeHook

    os.environ["AIRFLOW_CONN_MZ_URI"] = (
        f"materialize://materialize:{quote(PASSWORD, safe='')}@127.0.0.1:{emulator.port}"
        "/materialize?cluster=quickstart&table_schema=public&statement_timeout=5"
    )
    try:
        hook = MaterializeHook(materialize_conn_id="mz_uri")
        assert hook.connection.conn_type == "materialize"
        db = hook.get_database()
        try:
            assert db.query("SHOW statement_timeout") == [("5s",)]
        finally:
            db.close()
    finally:
        os.environ.pop("AIRFLOW_CONN_MZ_URI")


def test_default_port_is_materializes() -> None:
    from mz_schedctl_provider.hooks.materialize import connect_kwargs

    args = connect_kwargs(
        host="mz.example", port=None, login="u", password=None, database=None, extras={}
    )
    assert args["port"] == 6875
    assert args["dbname"] == "materialize"
    assert args["application_name"] == "mz-schedctl"
    assert "password" not in args
