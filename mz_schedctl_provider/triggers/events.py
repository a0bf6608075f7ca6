"""The cycle's event trigger, for Airflow 3's AssetWatcher: polls Materialize every
``poll_interval`` seconds (default 3 s; Materialize's own controller ticks every 5 s) with the
five small statements of runtime/event_reads.py, and fires an event when engine/wake.py says
a cycle could act now (a refused query on a suspended cluster, a hydrated base under a burst,
a hydrated resize target, a window's pre-warm opening).

Rate limit: no event within ``min_interval_s`` of the last cycle's server time (the cursor,
read from the controller's tables, so a triggerer restart loses nothing) nor of this trigger's
own last event; and one event per condition and cursor (a condition the next cycle leaves as
it is does not fire again until a cycle writes something). Only the connection id and the
knobs are serialized; the credentials are looked up in the triggerer.

Nothing here imports the engine or a driver at module level: the DAG file that builds this
trigger is parsed without them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

try:  # Airflow 3: the base class AssetWatcher requires
    from airflow.triggers.base import BaseEventTrigger as _Base
except ImportError:  # Airflow 2.11 has no watchers: the class exists but nothing runs it
    from airflow.triggers.base import BaseTrigger as _Base
from airflow.triggers.base import TriggerEvent

if TYPE_CHECKING:
    from mz_schedctl_provider.runtime.cycle import CycleSettings
    from mz_schedctl_provider.runtime.db import Database

DEFAULT_POLL_INTERVAL_S = 3.0
DEFAULT_MIN_INTERVAL_S = 30.0


class MaterializeCycleEventTrigger(_Base):  # type: ignore[misc,valid-type,unused-ignore]
    """Fire when a cycle could act before its next scheduled run.

    :param materialize_conn_id: Airflow connection of type ``materialize``.
    :param poll_interval: seconds between two polls (five statements each).
    :param min_interval_s: no event within this long of the last cycle or the last event.
    """

    def __init__(
        self,
        *,
        materialize_conn_id: str,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
    ) -> None:
        super().__init__()
        self.materialize_conn_id = materialize_conn_id
        self.poll_interval = float(poll_interval)
        self.min_interval_s = float(min_interval_s)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "materialize_conn_id": self.materialize_conn_id,
                "poll_interval": self.poll_interval,
                "min_interval_s": self.min_interval_s,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from mz_schedctl_provider.engine.wake import decide_wake

        fired: set[tuple[Any, ...]] = set()
        last_event: datetime | None = None
        db: Database | None = None
        settings: CycleSettings | None = None
        try:
            while True:
                try:
                    if db is None or settings is None:
                        db, settings = await self._open()
                    facts = await asyncio.to_thread(self._read, db, settings)
                except Exception as exc:  # Materialize restarting, a network blip: poll again
                    self.log.warning("Polling for cycle events failed, will retry: %s", exc)
                    if db is not None:
                        await asyncio.to_thread(db.close)
                    db = None
                    await asyncio.sleep(self.poll_interval)
                    continue
                decision = decide_wake(facts, min_interval_s=self.min_interval_s)
                keys = {
                    (decision.cursor, w.cluster_id, w.reason, w.detail) for w in decision.reasons
                }
                new = keys - fired
                own_limit = last_event is not None and facts.now < last_event + timedelta(
                    seconds=self.min_interval_s
                )
                if decision.wake and new and not own_limit:
                    # Only this cursor's keys matter: a cycle that wrote moves the cursor.
                    fired = {k for k in fired if k[0] == decision.cursor} | keys
                    last_event = facts.now
                    doc = decision.to_json()
                    self.log.info("Cycle event: %s", doc["reasons"])
                    yield TriggerEvent(doc)
                elif decision.reasons:
                    self.log.debug("Conditions held back: %s", decision.to_json())
                await asyncio.sleep(self.poll_interval)
        finally:  # cancelled (DAG paused, triggerer stopping): close the session
            if db is not None:
                db.close()

    async def _open(self) -> tuple[Database, CycleSettings]:
        from mz_schedctl_provider.hooks.materialize import MaterializeHook

        return await MaterializeHook.aevent_database(self.materialize_conn_id)

    @staticmethod
    def _read(db: Database, settings: CycleSettings) -> Any:
        from mz_schedctl_provider.runtime.event_reads import read_wake_facts
        from mz_schedctl_provider.runtime.store import Store

        return read_wake_facts(
            db, Store(db, schema=settings.schema), log_flush_lag_s=settings.log_flush_lag_s
        )
