"""The provider info Airflow reads (plain data, no Airflow needed): the connection form offers
no "null" choice and every field may stay blank; the [mz_schedctl] config section is built from
the one settings table."""

from __future__ import annotations

import pytest

from mz_schedctl_provider import get_provider_info
from mz_schedctl_provider.settings import SETTINGS, setting


def test_no_form_field_offers_null_and_every_field_may_stay_blank() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    for name, spec in conn_type["conn-fields"].items():
        schema = spec["schema"]
        assert "null" in schema["type"], f"{name}: a blank field must be valid"
        assert None not in schema.get("enum", []), f"{name}: the form would offer 'null'"
    assert conn_type["conn-fields"]["sslmode"]["schema"]["enum"][0] == "disable"


def test_config_section_lists_every_setting_with_its_fallback() -> None:
    section = get_provider_info()["config"]["mz_schedctl"]
    assert set(section["options"]) == set(SETTINGS)
    for key, option in section["options"].items():
        # Empty on purpose: a declared default would always win over the older variable.
        assert option["default"] == ""
        assert SETTINGS[key].env in option["description"]
        assert SETTINGS[key].default in option["description"]


def test_a_setting_falls_back_to_the_older_variable_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The main venv has no Airflow: the [mz_schedctl] section is empty here by construction.
    monkeypatch.delenv("MZ_SCHEDCTL_CONN_ID", raising=False)
    assert setting("conn_id") == "materialize_default"
    monkeypatch.setenv("MZ_SCHEDCTL_CONN_ID", "  mz_old  ")
    assert setting("conn_id") == "mz_old"
    monkeypatch.setenv("MZ_SCHEDCTL_CONN_ID", "")
    assert setting("conn_id") == "materialize_default"
