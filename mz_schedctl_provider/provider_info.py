"""What Airflow's ProvidersManager reads about this provider (entry point
``apache_airflow_provider``). Plain data, no Airflow import: it is loaded by every Airflow
process and by ``airflow providers list``."""

from __future__ import annotations

from typing import Any

from mz_schedctl_provider import __version__
from mz_schedctl_provider.settings import config_section

HOOK_CLASS = "mz_schedctl_provider.hooks.materialize.MaterializeHook"

# The Materialize connection form. Field values land in Connection.extra; the hook reads them.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "cluster": {
        "label": "Cluster",
        "description": "Cluster the controller's own queries run on (session variable 'cluster'). "
        "Catalog reads run on mz_catalog_server anyway; reading the controller's tables needs a "
        "cluster with a replica. Empty: the role's default cluster.",
        "schema": {"type": ["string", "null"]},
    },
    "application_name": {
        "label": "Application name",
        "description": "Sent to Materialize so the controller's own statements are not counted "
        "as user activity. Default: mz-schedctl.",
        "schema": {"type": ["string", "null"], "default": "mz-schedctl"},
    },
    "sslmode": {
        "label": "SSL mode",
        "description": "libpq sslmode. Materialize Cloud needs 'require' (or stricter).",
        "schema": {
            "type": ["string", "null"],
            # No None here: the form would offer it as a choice named "null". Left unset, libpq's
            # own default applies.
            "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        },
    },
    "table_schema": {
        "label": "Controller table schema",
        "description": "Database schema holding mz_cluster_strategies and the other controller "
        "tables. Default: public.",
        "schema": {"type": ["string", "null"], "default": "public"},
    },
    "statement_timeout": {
        "label": "Statement timeout (seconds)",
        "description": "Materialize aborts any statement of the controller after this many "
        "seconds (its statement_timeout). Empty: 120; 0: Materialize's own default.",
        "schema": {"type": ["number", "null"]},
    },
    "client_timeout": {
        "label": "Client timeout (seconds)",
        "description": "A statement with no answer at all after this many seconds fails the task "
        "with an error naming it, and its connection is closed. Empty: statement timeout + 30.",
        "schema": {"type": ["number", "null"]},
    },
    "lease_ttl_s": {
        "label": "Lease TTL (seconds)",
        "description": "The single-writer lease expires after this long; keep it longer than a "
        "whole cycle including retries. Default: 900.",
        "schema": {"type": ["integer", "null"], "default": 900},
    },
    "audit_retention_days": {
        "label": "Audit retention (days)",
        "description": "Audit rows older than this are pruned at the end of each cycle. "
        "Default: 7.",
        "schema": {"type": ["integer", "null"], "default": 7},
    },
    "experimental": {
        "label": "Enable experimental strategies",
        "description": "Allow experimental strategies (shrink_to_fit).",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": [],
    "relabeling": {"schema": "Database", "login": "User", "password": "Password / app password"},
    "placeholders": {
        "host": "abc123.us-east-1.aws.materialize.cloud or localhost",
        "port": "6875",
        "schema": "materialize",
        "login": "materialize",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Provider metadata in the shape of Airflow's provider_info.schema.json."""
    return {
        "package-name": "mz-schedctl-provider",
        "name": "Materialize cluster scheduling (mz-schedctl)",
        "description": "Schedule Materialize clusters from Airflow: zero-downtime resize, burst, "
        "idle suspend and resume of cluster replicas, with dry run, kill switch, audit trail and "
        "a single-writer lease.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Materialize",
                "external-doc-url": "https://materialize.com/docs/",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Materialize",
                "python-modules": ["mz_schedctl_provider.hooks.materialize"],
            }
        ],
        "operators": [
            {
                "integration-name": "Materialize",
                "python-modules": ["mz_schedctl_provider.operators.materialize"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Materialize",
                "python-modules": ["mz_schedctl_provider.sensors.materialize"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Materialize",
                "python-modules": ["mz_schedctl_provider.triggers.materialize"],
            }
        ],
        # [mz_schedctl] in `airflow config list` and conf.get (mz_schedctl_provider.settings).
        "config": config_section(),
        "connection-types": [
            {
                "connection-type": "materialize",
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Materialize",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
