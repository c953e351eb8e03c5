"""The package registers its two connection types the Airflow 3 way (provider info, no form methods)."""

import pytest
from airflow.providers_manager import ProvidersManager


@pytest.fixture(scope="module")
def providers():
    return ProvidersManager()


def test_package_is_a_provider(providers):
    assert "king-qics-sync" in providers.providers


@pytest.mark.parametrize(
    ("conn_type", "secret_fields", "plain_fields"),
    [
        ("king_finance", {"partner_key", "environment_code"}, set()),
        ("qics_milestones", {"client_secret", "refresh_token"}, {"client_id", "company_id"}),
    ],
)
def test_connection_form_fields(providers, conn_type, secret_fields, plain_fields):
    widgets = providers.connection_form_widgets
    for name in secret_fields | plain_fields:
        widget = widgets[f"extra__{conn_type}__{name}"]
        assert widget.is_sensitive == (name in secret_fields), name
        assert widget.field["schema"]["title"], name
    behaviour = providers.field_behaviours[conn_type]
    assert {"login", "password", "extra"} <= set(behaviour["hidden_fields"])
    assert behaviour["relabeling"]["host"]


@pytest.mark.parametrize(
    ("conn_type", "class_name"),
    [("king_finance", "KingFinanceHook"), ("qics_milestones", "QicsMilestonesHook")],
)
def test_hook_classes_resolve(providers, conn_type, class_name):
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook_info = ProvidersManagerTaskRuntime().hooks[conn_type]
    assert hook_info is not None, f"{conn_type} hook did not import"
    assert hook_info.hook_class_name.endswith(class_name)
    assert hook_info.connection_type == conn_type
