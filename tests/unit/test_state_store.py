"""The state store's settings: which database, and when the SQLite default is refused."""

import pytest

from king_qics.state import StateStore

POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def test_a_distributed_executor_without_a_shared_store_fails_loudly(monkeypatch, tmp_path):
    from king_qics.errors import ConfigurationError

    monkeypatch.delenv("KING_QICS_STATE_CONN_ID", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.raises(ConfigurationError, match="CeleryExecutor.*KING_QICS_STATE_CONN_ID"):
        StateStore.from_settings()
    monkeypatch.setenv(
        "AIRFLOW__CORE__EXECUTOR", "LocalExecutor,my_k8s:airflow.providers.x.KubernetesExecutor"
    )
    with pytest.raises(ConfigurationError, match="KubernetesExecutor"):
        StateStore.from_settings()
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    assert StateStore.from_settings().is_sqlite  # the embedded default keeps working
