"""The state store's cross-process lock really excludes other processes (SQLite and PostgreSQL)."""

import multiprocessing
import time
import uuid

import pytest
import sqlalchemy as sa

from king_qics.state import StateStore

POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _hold_lock(url: str, name: str, log_table: str, worker: int) -> None:
    store = StateStore(url)
    with store.locked(name) as conn:
        conn.execute(sa.text(f"INSERT INTO {log_table} (worker, event) VALUES (:w, 'enter')"), {"w": worker})
        time.sleep(0.3)
        conn.execute(sa.text(f"INSERT INTO {log_table} (worker, event) VALUES (:w, 'leave')"), {"w": worker})


def _assert_mutual_exclusion(url: str) -> None:
    store = StateStore(url)
    store.create_schema()
    log = sa.Table(
        "lock_log",
        sa.MetaData(),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("worker", sa.Integer),
        sa.Column("event", sa.Text),
    )
    log.drop(store.engine, checkfirst=True)
    log.create(store.engine)
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_hold_lock, args=(url, "adm:test", "lock_log", i)) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with store.transaction() as conn:
        events = conn.execute(sa.text("SELECT worker, event FROM lock_log ORDER BY seq")).all()
    assert len(events) == 6
    for enter, leave in zip(events[0::2], events[1::2], strict=True):
        assert enter.event == "enter" and leave.event == "leave" and enter.worker == leave.worker


def test_sqlite_lock_excludes_other_processes(tmp_path):
    _assert_mutual_exclusion(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def postgres_url():
    name = f"kqs_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    StateStore._engines.pop(f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}").dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_postgres_lock_excludes_other_processes(postgres_url):
    _assert_mutual_exclusion(postgres_url)


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
