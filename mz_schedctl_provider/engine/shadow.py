"""Shadow rows (``shadow: true``): planned and audited, never executed (status ``shadow``).

A shadow row acts on nothing, so nothing it concludes may act on the real run either:

- its findings never fail the run: an error (a shadow burst "stuck" past max_burst_s) becomes
  a warning that says it was not acted on; no burst exists, none is kept;
- it never claims a real replica: it creates none, so a replica its state names (a burst's
  ``replica_name``) is someone else's, and is not remembered as its own (else the row, once
  made real, would take a human's or another row's replica for its burst and drop it).
"""

from __future__ import annotations

from dataclasses import replace

from .facts import ClusterContext
from .models import Finding, JsonObject

PREFIX = "audited only, nothing executed"


def shadow_finding(finding: Finding) -> Finding:
    """A shadow pass's finding as the real plan shows it: never run-failing."""
    severity = "warning" if finding.severity == "error" else finding.severity
    who = f"shadow {finding.strategy}" if finding.strategy else "shadow"
    return replace(
        finding,
        severity=severity,
        message=f"{who} ({PREFIX}): {finding.message}",
        details={**finding.details, "shadow": True},
    )


def unclaimed(*, state: JsonObject, ctx: ClusterContext) -> JsonObject:
    """A shadow row's state without any claim on a real replica (see the module docstring)."""
    return {k: v for k, v in state.items() if not (isinstance(v, str) and ctx.exists(v))}
