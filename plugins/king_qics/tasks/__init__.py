"""What the DAGs' tasks run (on the worker), one callable per task: open the administration's
APIs and the state store, run a sync flow, log and return its counts, and end with a table of
records and reasons when any failed (king_qics.tasks.master_data, .invoices, .preflight).

A data error (records or invoices rejected) ends the task with that table as the last thing in
the log, without an Airflow traceback: the table is logged, then ``RecordsNotSynced`` ends the
task (see king_qics.errors). Faults of the APIs raise as they are (retried, with a traceback).
Import-light: the DAG file imports this package to name the tasks' callables.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

log = logging.getLogger(__name__)


def freeze_loaded_heap() -> None:
    """Keep what is loaded now (Airflow, pandas, the hooks: a large heap of long-lived objects) out of
    the cyclic garbage collector's full scans for the rest of the task. A sync allocates per record,
    which triggers those scans often; freezing cut the client CPU of a bulk load by about 15%
    (bench/RESULTS.md). Frozen objects are still freed when unreferenced; only cycles among them
    stay until the task's process ends."""
    gc.freeze()


def administration(config_path: str, administration_id: str):
    from king_qics.config import load_administrations

    result = load_administrations(config_path)
    for adm in result.administrations:
        if adm.id == administration_id:
            return adm, result
    raise LookupError(f"administration {administration_id!r} is not (validly) configured in {config_path}")


def state_store(config):
    from king_qics.state import StateStore

    return StateStore.from_settings(getattr(config, "state_store_conn_id", None))


def publish_counts(context: dict, counts: dict) -> None:
    """Counts as XCom ``counts``, pushed before a task fails too (the return value is not)."""
    if context.get("ti") is not None:
        context["ti"].xcom_push(key="counts", value=counts)


def cleared_or_retried(context: dict) -> bool:
    """A task try after the first (a person cleared the task, or Airflow retries it): records Qics
    rejected are sent again even when they did not change."""
    ti = context.get("ti")
    return ti is not None and (getattr(ti, "try_number", 1) or 1) > 1


@contextmanager
def apis(adm, store, *, king: bool = True, qics: bool = True) -> Iterator[tuple]:
    """An administration's King and Qics hooks, each closed (King: logged out) at the end."""
    from king_qics.hooks.king import KingFinanceHook
    from king_qics.hooks.qics import QicsMilestonesHook

    with ExitStack() as stack:
        king_hook = stack.enter_context(KingFinanceHook(adm.king_conn_id)) if king else None
        qics_hook = None
        if qics:
            qics_hook = stack.enter_context(
                QicsMilestonesHook(
                    adm.qics_conn_id, token_store=store.tokens, max_in_flight=adm.qics_write_concurrency
                )
            )
        yield king_hook, qics_hook


def records(count: int, entity: str, what: str = "record") -> str:
    return f"{count} {entity} {what}{'' if count == 1 else 's'}"
