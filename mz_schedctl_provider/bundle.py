"""Where the installed package keeps its DAG files, and the two ways Airflow finds them.

- Airflow 3: a DAG bundle (``[dag_processor] dag_bundle_config_list``) of type LocalDagBundle
  whose path is :data:`DAG_FOLDER` inside the installed package; :func:`bundle_config` prints
  the list entry (``mz-schedctl airflow-dags --bundle-config``).
- Airflow 2 (no bundles): :func:`write_dag_files` copies the stub files into the DAGs folder
  (``mz-schedctl airflow-dags --write DIR``).

The files only call the factories in :mod:`mz_schedctl_provider.dags`, so a copied stub never
goes stale when the package is upgraded. No Airflow import: the CLI uses this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DAG_FOLDER = Path(__file__).resolve().parent / "dag_files"
BUNDLE_NAME = "mz_schedctl"
LOCAL_BUNDLE_CLASS = "airflow.dag_processing.bundles.local.LocalDagBundle"


def dag_files() -> list[Path]:
    """The DAG files the package ships (sorted by name)."""
    return sorted(DAG_FOLDER.glob("*.py"))


def bundle_entry() -> dict[str, Any]:
    """One entry of Airflow 3's ``dag_bundle_config_list`` pointing at :data:`DAG_FOLDER`."""
    return {
        "name": BUNDLE_NAME,
        "classpath": LOCAL_BUNDLE_CLASS,
        "kwargs": {"path": str(DAG_FOLDER)},
    }


def bundle_config(existing: str | None = None) -> str:
    """The JSON value of ``dag_bundle_config_list``: ``existing`` (a JSON list, e.g. Airflow's
    default dags-folder bundle) plus this package's bundle, replacing an older entry of the
    same name."""
    entries: list[dict[str, Any]] = []
    if existing and existing.strip():
        parsed = json.loads(existing)
        if not isinstance(parsed, list):
            raise ValueError("dag_bundle_config_list must be a JSON list")
        entries = [e for e in parsed if not (isinstance(e, dict) and e.get("name") == BUNDLE_NAME)]
    entries.append(bundle_entry())
    return json.dumps(entries)


def write_dag_files(target: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the stub DAG files into ``target`` (created when missing). An existing file with
    other content is kept unless ``overwrite``; raises FileExistsError naming it."""
    target.mkdir(parents=True, exist_ok=True)
    pending = []
    for source in dag_files():
        dest = target / source.name
        text = source.read_text()
        if dest.exists() and dest.read_text() != text and not overwrite:
            raise FileExistsError(f"{dest} exists with other content (use --overwrite)")
        pending.append((dest, text))
    for dest, text in pending:
        dest.write_text(text)
    return [dest for dest, _ in pending]
