"""Trigger that waits, in the triggerer's event loop, until a Materialize cluster (or one named
replica of it) is hydrated: async polling with psycopg's AsyncConnection.

Only the connection id, cluster, replica and poll interval are serialized; credentials are
looked up in the triggerer and never stored with the trigger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


async def _connection_kwargs(conn_id: str) -> dict[str, Any]:
    from mz_schedctl_provider.hooks.materialize import MaterializeHook, connect_kwargs

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
    return connect_kwargs(
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        database=conn.schema,
        extras={k: v for k, v in dict(extras).items() if k != "cursor"},
        ignored=frozenset(MaterializeHook.ignored_extra_options),
    )


class MaterializeHydrationTrigger(BaseTrigger):
    """Fire once the cluster has a hydrated replica (or the named replica is hydrated).

    :param materialize_conn_id: Airflow connection of type ``materialize``.
    :param cluster: cluster name.
    :param replica: replica name; None for any replica of the cluster.
    :param poll_interval: seconds between two checks.
    """

    def __init__(
        self,
        *,
        materialize_conn_id: str,
        cluster: str,
        replica: str | None = None,
        poll_interval: float = 30.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call,unused-ignore]
        self.materialize_conn_id = materialize_conn_id
        self.cluster = cluster
        self.replica = replica
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "materialize_conn_id": self.materialize_conn_id,
                "cluster": self.cluster,
                "replica": self.replica,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import psycopg

        from mz_schedctl_provider.hooks.materialize import HYDRATION_SQL, hydrated_replicas

        target = f"{self.cluster}.{self.replica}" if self.replica else self.cluster
        try:
            kwargs = await _connection_kwargs(self.materialize_conn_id)
            while True:
                try:
                    conn = await psycopg.AsyncConnection.connect(autocommit=True, **kwargs)
                    async with conn:
                        cur = await conn.execute(HYDRATION_SQL, (self.cluster,))
                        rows = await cur.fetchall()
                except psycopg.OperationalError as exc:
                    # Materialize restarting or a network blip: keep waiting until the timeout.
                    self.log.warning("Checking %s failed, will retry: %s", target, exc)
                    rows = None
                if rows is not None:
                    ready = hydrated_replicas(rows)
                    done = self.replica in ready if self.replica else bool(ready)
                    if done:
                        event = {"status": "success", "cluster": self.cluster, "hydrated": ready}
                        yield TriggerEvent(event)  # type: ignore[no-untyped-call,unused-ignore]
                        return
                    self.log.info("%s not hydrated yet (hydrated replicas: %s)", target, ready)
                await asyncio.sleep(self.poll_interval)
        except Exception as exc:
            failed = {"status": "error", "cluster": self.cluster, "message": str(exc)}
            yield TriggerEvent(failed)  # type: ignore[no-untyped-call,unused-ignore]
