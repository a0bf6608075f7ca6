"""Sensor that waits until a Materialize cluster, or one of its replicas, is hydrated."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)


class MaterializeHydrationSensor(BaseSensorOperator):
    """Wait until a cluster has a hydrated replica, or until a named replica is hydrated.

    A replica is hydrated when every user object of its cluster (indexes, materialized views,
    sources, sinks) is hydrated on it; on a cluster without user objects, once it is online.
    The XCom value is ``{"cluster": ..., "hydrated": [replica names]}``.

    :param cluster: cluster name (templated).
    :param replica: replica name (templated); None for any replica of the cluster.
    :param materialize_conn_id: Airflow connection of type ``materialize`` (templated).
    :param deferrable: wait in the triggerer (async polling) instead of holding a worker slot.
    :param poll_interval: seconds between checks when deferred (``poke_interval`` otherwise).
    """

    template_fields: Sequence[str] = ("cluster", "replica", "materialize_conn_id")
    ui_color = "#e3d9f7"

    def __init__(
        self,
        *,
        cluster: str,
        replica: str | None = None,
        materialize_conn_id: str = "materialize_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster
        self.replica = replica
        self.materialize_conn_id = materialize_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def _normalize(self) -> None:
        # A templated replica renders to "" (or "None") when the template had nothing to give.
        if self.replica in ("", "None"):
            self.replica = None

    @property
    def _target(self) -> str:
        return f"{self.cluster}.{self.replica}" if self.replica else self.cluster

    def execute(self, context: Any) -> Any:
        self._normalize()
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if isinstance(done, PokeReturnValue) and done.is_done:
            return done.xcom_value
        from mz_schedctl_provider.triggers.materialize import MaterializeHydrationTrigger

        self.defer(
            trigger=MaterializeHydrationTrigger(
                materialize_conn_id=self.materialize_conn_id,
                cluster=self.cluster,
                replica=self.replica,
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not event or event.get("status") != "success":
            message = (event or {}).get("message", "no event")
            raise AirflowException(f"Waiting for {self._target} to hydrate failed: {message}")
        self.log.info("%s is hydrated (hydrated replicas: %s)", self._target, event["hydrated"])
        return {"cluster": event["cluster"], "hydrated": event["hydrated"]}

    def poke(self, context: Any) -> PokeReturnValue:
        from mz_schedctl_provider.hooks.materialize import MaterializeHook

        self._normalize()
        hook = MaterializeHook(materialize_conn_id=self.materialize_conn_id)
        replicas = hook.replica_hydration(self.cluster)
        ready = [r.name for r in replicas if r.hydrated]
        done = self.replica in ready if self.replica else bool(ready)
        if not replicas:
            self.log.info("Cluster %s has no replicas (or does not exist) yet", self.cluster)
        elif not done:
            self.log.info("%s not hydrated yet (hydrated replicas: %s)", self._target, ready)
        return PokeReturnValue(
            is_done=done, xcom_value={"cluster": self.cluster, "hydrated": ready} if done else None
        )
