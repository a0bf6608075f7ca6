"""mz-schedctl-provider: schedule Materialize cluster replicas from Apache Airflow."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """Airflow provider metadata (entry point ``apache_airflow_provider``)."""
    from mz_schedctl_provider.provider_info import get_provider_info as _info

    return _info()
