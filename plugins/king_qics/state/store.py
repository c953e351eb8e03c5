"""The state database: one engine per URL and process, the dialect-aware statements every room
uses, the additive schema migration, and the refusal of a per-worker SQLite file under an executor
that runs tasks on other machines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache, cached_property
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from king_qics.state.tables import metadata, synced_records

STATE_CONN_ID_ENV = "KING_QICS_STATE_CONN_ID"
STATE_FILE_NAME = "king_qics_state.db"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlalchemy_url_from_connection(conn_id: str) -> str:
    from airflow.sdk import BaseHook

    uri = BaseHook.get_connection(conn_id).get_uri()
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix) :]
    return uri


LOCAL_EXECUTORS = {"LocalExecutor", "SequentialExecutor", "DebugExecutor"}


def _distributed_executors() -> list[str]:
    """The configured executors that may run tasks on other machines (``[core] executor``)."""
    from airflow.configuration import conf

    names = [part.strip() for part in str(conf.get("core", "executor", fallback="")).split(",")]
    names = [name.rpartition(":")[2].rpartition(".")[2] for name in names if name]  # alias:path.Class
    return [name for name in names if name not in LOCAL_EXECUTORS]


def _refuse_a_local_store_for(executors: list[str]) -> None:
    if executors:
        from king_qics.errors import ConfigurationError

        raise ConfigurationError(
            f"the sync-state store is a SQLite file on this worker, but the executor "
            f"({', '.join(executors)}) runs tasks on several machines: each would keep its own invoice "
            "ledger and token chain. Set state_store_conn_id in include/administrations.yaml or "
            f"${STATE_CONN_ID_ENV} to a shared database."
        )


def default_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return f"sqlite:///{home.resolve() / STATE_FILE_NAME}"


class StateStore:
    """Access to the state database; cheap to create, one engine per URL and process."""

    _engines: dict[str, Engine] = {}

    def __init__(self, url: str):
        self.url = url
        if url not in self._engines:
            self._engines[url] = _create_engine(url)
        self.engine = self._engines[url]

    @classmethod
    def from_settings(cls, conn_id: str | None = None) -> StateStore:
        """The store named by ``conn_id`` (or $KING_QICS_STATE_CONN_ID), else the SQLite default,
        which only an executor that runs every task on this machine may use."""
        conn_id = conn_id or os.environ.get(STATE_CONN_ID_ENV)
        if not conn_id:
            _refuse_a_local_store_for(_distributed_executors())
        store = cls(_sqlalchemy_url_from_connection(conn_id) if conn_id else default_url())
        store.create_schema()
        return store

    @cached_property
    def tokens(self):
        """This store as the Qics hook's TokenStore (king_qics.state.tokens.TokenChains)."""
        from king_qics.state.tokens import TokenChains

        return TokenChains(self)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def create_schema(self) -> None:
        metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        for table in metadata.sorted_tables:  # indexes added after a table was created
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to a table after a store was created (all nullable): ALTER TABLE ADD COLUMN,
    so an existing state store keeps its data when the package is upgraded."""
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        if not missing:
            continue
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


def _insert(conn: Connection, table: sa.Table):
    """INSERT with ON CONFLICT support, for the dialects the store runs on (SQLite, PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _insert_ignore(conn: Connection, table: sa.Table, values: dict):
    return _insert(conn, table).values(**values).on_conflict_do_nothing()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            # One commit per synced record: in WAL mode NORMAL skips the fsync per commit and stays
            # consistent; only a power cut may lose the last commits (re-checked by the next run).
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")
            dbapi_connection.execute("PRAGMA busy_timeout=60000")

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _upsert(conn: Connection, table: sa.Table, values: dict, update: dict):
    keys = [column.name for column in table.primary_key.columns]
    conn.execute(
        _insert(conn, table).values(**values).on_conflict_do_update(index_elements=keys, set_=update)
    )


@cache
def _saved_upsert(dialect: str, columns: tuple[str, ...]):
    """The upsert of SyncedRecords.saved, built once: it runs once per synced record, and building
    the statement anew each time cost more than executing it."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(synced_records)
    keys = [column.name for column in synced_records.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in columns}
    )
