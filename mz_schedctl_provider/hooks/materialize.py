"""Airflow hook for Materialize: a PostgresHook that opens sessions the way the controller needs
them (autocommit, tagged with an application name, on a chosen cluster, with a statement
timeout) and reads the controller's settings from the connection's extras.

Works with either driver PostgresHook picks: psycopg 3 (Airflow 3, SQLAlchemy 2) or psycopg2
(Airflow 2.11). The password is only ever handed to the driver: never logged, never returned.
"""

from __future__ import annotations

import socket
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from mz_schedctl_provider.runtime.catalog_reads import (
    REPLICA_HYDRATION_BY_NAME,
    ReplicaHydration,
    replica_hydration,
)
from mz_schedctl_provider.runtime.connection_settings import (
    client_timeout,
    seconds_extra,
    session_options,
)
from mz_schedctl_provider.runtime.cycle import CycleSettings
from mz_schedctl_provider.runtime.db import APPLICATION_NAME, Database
from mz_schedctl_provider.runtime.flags import flag
from mz_schedctl_provider.runtime.readiness import check_readiness, summary

DEFAULT_PORT = 6875
DEFAULT_DATABASE = "materialize"
DEFAULT_CONNECT_TIMEOUT_S = 10
# OpenLineage dataset namespace: materialize://host:port (the Postgres hook says postgres://).
OPENLINEAGE_SCHEME = "materialize"
# Airflow 2's connection form posts its custom fields under this prefix ("Test" sends them as
# they are; older saved connections may hold them too).
FORM_PREFIX = "extra__materialize__"

# Extras that configure the controller, not libpq: never passed to the driver.
CONTROLLER_EXTRAS = frozenset(
    {
        "cluster",
        "table_schema",
        "statement_timeout",
        "client_timeout",
        "lease_ttl_s",
        "audit_retention_days",
        "experimental",
    }
)


def connect_kwargs(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    database: str | None,
    extras: dict[str, Any],
    ignored: frozenset[str] | set[str] = frozenset(),
    options: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect``/``psycopg2.connect`` (and AsyncConnection).

    Extras the hook does not interpret (``sslmode``, ``sslrootcert``, ``connect_timeout``...)
    go to libpq as they are; controller settings never do."""
    args: dict[str, Any] = {
        "host": host or "localhost",
        "port": int(port or DEFAULT_PORT),
        "user": login or None,
        "password": password or None,
        "dbname": database or DEFAULT_DATABASE,
    }
    for key, value in extras.items():
        if key in ignored or key in CONTROLLER_EXTRAS or value in (None, ""):
            continue
        args[key] = value
    args.setdefault("application_name", APPLICATION_NAME)
    args.setdefault("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S)
    opts = session_options(extras, options)
    if opts:
        args["options"] = opts
    return {k: v for k, v in args.items() if v is not None}


def normalized_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """The extras by their plain names: Airflow 2's form prefix stripped (a plain key wins over
    a prefixed one), blank values (an empty form field) dropped."""
    plain: dict[str, Any] = {}
    for key, value in extras.items():
        if value in (None, ""):
            continue
        if key.startswith(FORM_PREFIX):
            plain.setdefault(key[len(FORM_PREFIX) :], value)
        else:
            plain[key] = value
    return plain


def openlineage_parts(
    host: str | None, port: int | None, database: str | None
) -> tuple[str, str, str]:
    """(scheme, authority, database) of OpenLineage's dataset namespace for this connection."""
    return (
        OPENLINEAGE_SCHEME,
        f"{host or 'localhost'}:{int(port or DEFAULT_PORT)}",
        database or DEFAULT_DATABASE,
    )


class MaterializeHook(PostgresHook):
    """Interact with Materialize through its PostgreSQL wire protocol.

    :param materialize_conn_id: Airflow connection of type ``materialize`` (extras: ``cluster``,
        ``application_name``, ``sslmode``, ``table_schema``, ``statement_timeout`` in seconds,
        ``lease_ttl_s``, ``audit_retention_days``, ``experimental``).
    """

    conn_name_attr = "materialize_conn_id"
    default_conn_name = "materialize_default"
    conn_type = "materialize"
    hook_name = "Materialize"
    ignored_extra_options = set(getattr(PostgresHook, "ignored_extra_options", ())) | set(
        CONTROLLER_EXTRAS
    )

    # ---- connections ----------------------------------------------------------------------

    def extras(self) -> dict[str, Any]:
        """The connection's extras by plain name (see :func:`normalized_extras`)."""
        return normalized_extras(dict(self.connection.extra_dejson))

    def connection_kwargs(self) -> dict[str, Any]:
        """Driver keyword arguments for this connection (contains the password: never log it)."""
        conn = self.connection
        extras = self.extras()
        return connect_kwargs(
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            database=getattr(self, "database", None) or conn.schema,
            extras={k: v for k, v in extras.items() if k != "cursor"},
            ignored=frozenset(self.ignored_extra_options),
            options=getattr(self, "options", None),
        )

    def get_conn(self) -> Any:
        """A new DB-API connection (psycopg 3 on Airflow 3, psycopg2 on Airflow 2.11)."""
        args = self.connection_kwargs()
        raw_cursor = self.extras().get("cursor")
        if raw_cursor:
            key, value = self._get_cursor_config(raw_cursor)
            args[key] = value
        create = getattr(super(), "_create_connection", None)
        if create is not None:
            self.conn = create(args)
        else:  # providers-postgres 6.x: psycopg2 only
            import psycopg2

            self.conn = psycopg2.connect(**args)
        return self.conn

    def plan_seal_key(self) -> bytes:
        """The key decide seals its plan with and apply checks it with: derived from this
        connection's secret, so it never travels in XCom."""
        from mz_schedctl_provider.runtime.plan_seal import seal_key

        conn = self.connection
        return seal_key(
            getattr(conn, "conn_id", None),
            conn.host,
            conn.port,
            conn.login,
            conn.password,
            conn.schema,
        )

    # ---- domain reads (the sensor's and the trigger's) ----------------------------------------

    def replica_hydration(self, cluster: str) -> list[ReplicaHydration]:
        """Each replica of the cluster (by name) and whether it is hydrated; [] when the
        cluster has no replica or does not exist."""
        db = self.get_database()
        try:
            rows = db.query(
                REPLICA_HYDRATION_BY_NAME, (cluster,), purpose=f"reading hydration of {cluster!r}"
            )
        finally:
            db.close()
        return replica_hydration(rows)

    @classmethod
    async def areplica_hydration(cls, conn_id: str, cluster: str) -> list[ReplicaHydration]:
        """:meth:`replica_hydration` for the triggerer's event loop (psycopg's AsyncConnection;
        the connection is looked up there, never stored with the trigger)."""
        import psycopg

        kwargs = await _async_connection_kwargs(conn_id)
        conn = await psycopg.AsyncConnection.connect(autocommit=True, **kwargs)
        async with conn:
            cur = await conn.execute(REPLICA_HYDRATION_BY_NAME, (cluster,))
            rows = await cur.fetchall()
        return replica_hydration(rows)

    @classmethod
    async def aevent_database(cls, conn_id: str) -> tuple[Database, CycleSettings]:
        """For the event trigger: a connection (psycopg 3, opened in a worker thread; the
        trigger runs its short reads there too) and the controller's settings from the
        extras (the tables' schema, the statement log's flush lag). Looked up in the
        triggerer, never stored with the trigger."""
        import asyncio

        import psycopg

        kwargs, extras = await _async_connection_parts(conn_id)
        conn = await asyncio.to_thread(psycopg.connect, **kwargs)
        defaults = CycleSettings()
        settings = CycleSettings(
            schema=str(extras.get("table_schema") or defaults.schema),
            log_flush_lag_s=seconds_extra(extras, "log_flush_lag_s", defaults.log_flush_lag_s),
        )
        return Database(conn, client_timeout_s=client_timeout(extras)), settings

    def get_database(self) -> Database:
        """A fresh connection in autocommit, wrapped for the controller (one statement per
        transaction, as Materialize requires)."""
        return Database(self.get_conn(), client_timeout_s=client_timeout(self.extras()))

    # ---- settings -------------------------------------------------------------------------

    def cycle_settings(self, *, holder: str | None = None) -> CycleSettings:
        """The controller's settings from the connection's extras."""
        extras = self.extras()
        defaults = CycleSettings()
        return CycleSettings(
            schema=str(extras.get("table_schema") or defaults.schema),
            lease_ttl_s=int(extras.get("lease_ttl_s") or defaults.lease_ttl_s),
            audit_retention_days=int(
                extras.get("audit_retention_days") or defaults.audit_retention_days
            ),
            experimental=flag(extras.get("experimental"), name="connection extra experimental"),
            holder=holder or f"airflow@{socket.gethostname()}",
            log_flush_lag_s=seconds_extra(extras, "log_flush_lag_s", defaults.log_flush_lag_s),
            realert_interval_s=seconds_extra(
                extras, "realert_interval_s", defaults.realert_interval_s
            ),
        )

    # ---- connection test & UI -------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:  # type: ignore[override]
        """Check what a cycle needs (Airflow's "Test" button): Materialize's catalog, a session
        cluster that exists and has a replica, the controller's tables (or the right to create
        them) and visible statement logging; the message names each check that failed."""
        password = self.connection.password
        try:
            schema = self.cycle_settings(holder="test").schema
            db = self.get_database()
        except Exception as exc:
            return False, _no_secrets(f"cannot connect: {exc}", password)
        try:
            ok, message = summary(check_readiness(db, schema=schema))
        except Exception as exc:
            return False, _no_secrets(str(exc), password)
        finally:
            db.close()
        return ok, _no_secrets(message, password)

    # ---- OpenLineage (SQL operators on this connection report materialize://host:port) -----

    def get_openlineage_database_info(self, connection: Any) -> Any:
        """OpenLineage's DatabaseInfo: scheme ``materialize``, authority ``host:port``."""
        from airflow.providers.openlineage.sqlparser import DatabaseInfo

        scheme, authority, database = openlineage_parts(
            connection.host, connection.port, getattr(self, "database", None) or connection.schema
        )
        return DatabaseInfo(scheme=scheme, authority=authority, database=database)

    def get_openlineage_database_dialect(self, connection: Any) -> str:
        """Materialize speaks PostgreSQL's SQL dialect (for OpenLineage's SQL parser)."""
        return "postgres"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form on Airflow < 3.2 (later versions read the provider info)."""
        from mz_schedctl_provider.provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form on Airflow 2.x (Flask AppBuilder widgets).

        Every field is optional: a blank one is saved as nothing (the default applies), so Save
        works with the integer fields left empty. Airflow 2 takes only text, integer, password
        and boolean fields, so a field with a fixed set of values (sslmode) is a text field
        that accepts exactly those, named in its description."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import BooleanField, IntegerField, StringField
            from wtforms.validators import AnyOf, NumberRange, Optional
        except ImportError:  # Airflow 3: the form comes from the provider info
            return {}
        from mz_schedctl_provider.provider_info import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            schema = spec["schema"]
            types = schema["type"]
            label = lazy_gettext(spec["label"])
            if "boolean" in types:
                widgets[name] = BooleanField(label, description=spec["description"])
            elif "integer" in types:
                widgets[name] = IntegerField(
                    label,
                    widget=BS3TextFieldWidget(),
                    description=spec["description"],
                    validators=[Optional(), NumberRange(min=0)],
                )
            elif "enum" in schema:
                choices = list(schema["enum"])
                widgets[name] = StringField(
                    label,
                    widget=BS3TextFieldWidget(),
                    description=f"{spec['description']} One of: {', '.join(choices)}; "
                    "empty: libpq's default.",
                    validators=[Optional(), AnyOf(choices)],
                )
            else:
                widgets[name] = StringField(
                    label,
                    widget=BS3TextFieldWidget(),
                    description=spec["description"],
                    validators=[Optional()],
                )
        return widgets


def _no_secrets(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text


async def _async_connection_kwargs(conn_id: str) -> dict[str, Any]:
    """Driver arguments of a connection, looked up without blocking the event loop."""
    return (await _async_connection_parts(conn_id))[0]


async def _async_connection_parts(conn_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(driver arguments, normalized extras) of a connection, without blocking the loop."""
    try:
        from airflow.providers.common.compat.connection import (
            get_async_connection,
            get_async_extra_dejson,
        )
    except ImportError:  # older common-compat: resolve in a worker thread
        from asgiref.sync import sync_to_async

        conn = await sync_to_async(MaterializeHook.get_connection)(conn_id)
        extras = await sync_to_async(lambda: conn.extra_dejson)()
    else:
        conn = await get_async_connection(conn_id, hook=MaterializeHook)
        extras = await get_async_extra_dejson(conn)
    plain = normalized_extras(dict(extras))
    kwargs = connect_kwargs(
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        database=conn.schema,
        extras={k: v for k, v in plain.items() if k != "cursor"},
        ignored=frozenset(MaterializeHook.ignored_extra_options),
    )
    return kwargs, plain
