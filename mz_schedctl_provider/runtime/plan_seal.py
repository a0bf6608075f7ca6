"""Apply refuses a plan the decide stage did not produce. Airflow 3.3 lets a user edit a task's
XCom, and the plan travels as one: an edited plan could name another cluster, replica or size
(apply renders SQL only from those fields, so the plan's SQL text is never run anyway). Decide
seals the whole plan document with an HMAC whose key never enters XCom: it is derived from the
connection's secret (its password, with host, port, user, database and conn id). Apply and
persist verify the seal before they act.

Chosen over re-deriving the plan at apply (signals again, decide again, execute what both agree
on): one hash instead of a second batch of catalog reads per cycle, and no disagreement to
explain between two plans made moments apart. A connection without a password gives a key
anyone who can read the connection can compute: then the seal guards against accidents, not
against someone who can edit both XComs and read the connection."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the DAG file imports this module: keep the engine out of DAG parsing
    from mz_schedctl_provider.engine.models import JsonObject

SEAL_XCOM_KEY = "plan_seal"
_DOMAIN = b"mz-schedctl plan seal v1\0"


class PlanRefused(Exception):
    """The plan is not the one this cycle's decide stage produced: nothing is applied."""


def seal_key(*secret_parts: object) -> bytes:
    """The sealing key from the connection's parts (never stored, never in XCom)."""
    material = "\0".join("" if p is None else str(p) for p in secret_parts).encode()
    return hashlib.sha256(_DOMAIN + material).digest()


def _canonical(plan_doc: JsonObject) -> bytes:
    # Sorted keys and fixed separators: the same document always hashes the same, whatever
    # order a JSON round trip through the XCom backend left its keys in.
    return json.dumps(plan_doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def seal(plan_doc: JsonObject, key: bytes) -> str:
    return hmac.new(key, _canonical(plan_doc), hashlib.sha256).hexdigest()


def verify(plan_doc: JsonObject, given: object, key: bytes, *, cycle_id: str | None = None) -> None:
    """Raise PlanRefused unless the seal matches this document (and, when given, the plan
    belongs to this cycle)."""
    if not isinstance(given, str) or not given:
        raise PlanRefused(
            "the plan has no seal from the decide stage: nothing applied (pass the decide "
            f"task's XCom {SEAL_XCOM_KEY!r} as plan_seal)"
        )
    if not hmac.compare_digest(seal(plan_doc, key), given):
        raise PlanRefused(
            "the plan is not the one the decide stage produced (edited after decide, or from "
            "another connection): nothing applied"
        )
    if cycle_id is not None and plan_doc.get("cycle_id") != cycle_id:
        raise PlanRefused(
            f"the plan belongs to cycle {plan_doc.get('cycle_id')!r}, not {cycle_id!r}: "
            "nothing applied"
        )
