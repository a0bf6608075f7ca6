"""docker-compose.yaml cannot run here (no Docker engine): check its values instead, against
materialize.md section 7 and the Airflow settings the provider relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mz_schedctl_provider.emulator.catalog import SIZES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def _system_parameters(service: dict[str, Any]) -> dict[str, str]:
    raw = service["environment"]["MZ_SYSTEM_PARAMETER_DEFAULT"]
    params = {}
    for item in raw.split(";"):
        key, _, value = item.partition("=")
        params[key.strip()] = value.strip()
    return params


def test_materialize_image_is_pinned_and_exposes_its_ports(compose: dict[str, Any]) -> None:
    mz = compose["services"]["materialized"]
    image, _, tag = mz["image"].partition(":")
    assert image == "materialize/materialized"
    assert tag.startswith("v26.") and tag != "latest"
    published = {p.split(":")[1] for p in mz["ports"]}
    assert {"6874", "6875", "6876", "6877"} <= published


def test_materialize_logs_statements_and_allows_every_emulated_size(
    compose: dict[str, Any],
) -> None:
    params = _system_parameters(compose["services"]["materialized"])
    assert params["statement_logging_max_sample_rate"] == "1"
    assert params["statement_logging_default_sample_rate"] == "1"
    allowed = [s.strip('"') for s in params["allowed_cluster_replica_sizes"].split(",")]
    assert allowed == [size[0] for size in SIZES]


def test_materialize_healthcheck_uses_pg_isready(compose: dict[str, Any]) -> None:
    test = compose["services"]["materialized"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    assert test[test.index("-p") + 1] == "6875"
    assert test[test.index("-U") + 1] == "materialize"


def test_airflow_3_with_the_provider_dags_and_connection(compose: dict[str, Any]) -> None:
    airflow = compose["services"]["airflow"]
    image, _, tag = airflow["image"].partition(":")
    assert image == "apache/airflow" and tag.startswith("3.")
    env = airflow["environment"]
    assert env["_PIP_ADDITIONAL_REQUIREMENTS"] == "/opt/mz-schedctl"
    assert "./dags:/opt/airflow/dags:ro" in airflow["volumes"]
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    conn = json.loads(env["AIRFLOW_CONN_MATERIALIZE_DEFAULT"])
    assert conn["conn_type"] == "materialize"
    assert (conn["host"], conn["port"], conn["login"]) == ("materialized", 6875, "materialize")
    assert airflow["depends_on"]["materialized"]["condition"] == "service_healthy"
    assert (ROOT / "dags" / "mz_schedctl_cycle.py").exists()


def test_airflow_metadata_database_is_postgres(compose: dict[str, Any]) -> None:
    db = compose["services"]["airflow-db"]
    assert db["image"].startswith("postgres:")
    url = compose["services"]["airflow"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert f"{db['environment']['POSTGRES_USER']}:{db['environment']['POSTGRES_PASSWORD']}@" in url
