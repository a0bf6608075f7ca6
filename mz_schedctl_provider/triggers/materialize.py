"""Trigger that waits, in the triggerer's event loop, until a Materialize cluster (or one named
replica of it) is hydrated: async polling with psycopg's AsyncConnection.

Only the connection id, cluster, replica and poll interval are serialized; credentials are
looked up in the triggerer and never stored with the trigger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


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

        from mz_schedctl_provider.hooks.materialize import MaterializeHook

        target = f"{self.cluster}.{self.replica}" if self.replica else self.cluster
        try:
            while True:
                try:
                    replicas = await MaterializeHook.areplica_hydration(
                        self.materialize_conn_id, self.cluster
                    )
                except psycopg.OperationalError as exc:
                    # Materialize restarting or a network blip: keep waiting until the timeout.
                    self.log.warning("Checking %s failed, will retry: %s", target, exc)
                    replicas = None
                if replicas is not None:
                    ready = [r.name for r in replicas if r.hydrated]
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
