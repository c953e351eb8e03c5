"""Airflow DAG file of King Finance <-> QicsMilestones: the DAGs of every administration in
include/administrations.yaml (Airflow parses only files that mention "airflow" and "dag").

Parsing reads only that file (found relative to this one; $KING_QICS_CONFIG may name another):
no network, no database, no connections, no variables. A broken entry becomes one import error
naming the administration and the field, while the other administrations' DAGs load as usual.
"""

import gc

from airflow.sdk import get_parsing_context

from king_qics.catalog import MAINTENANCE_DAG_ID, PREFLIGHT_DAG_ID, WATCHDOG_DAG_ID, config_path
from king_qics.config import load_administrations
from king_qics.dag_factory import build_dags, build_maintenance_dag, build_watchdog_dag, config_error_dag
from king_qics.dag_preflight import build_preflight_dag

CONFIG_PATH = config_path(__file__)

_config = load_administrations(CONFIG_PATH)
# A task process parses this file to run one task of one DAG: Airflow names that DAG in the parsing
# context, and only it is built (with 200 administrations, building all 600 DAGs cost every task
# 1.4-1.8 s). The dag-processor has no such DAG id and builds them all.
_only = get_parsing_context().dag_id
# Building hundreds of DAGs allocates hundreds of thousands of long-lived objects, which set off
# repeated full scans of the cyclic garbage collector: about a sixth of the parse time with 200
# administrations (bench/RESULTS.md). What is built here stays alive, so the scans are skipped.
gc.disable()
try:
    for _adm in _config.administrations:
        if _adm.enabled:
            for _dag in build_dags(_adm, str(CONFIG_PATH), only=_only):
                globals()[_dag.dag_id] = _dag
    # the DAGs every administration shares, each built only where it is needed
    _shared = {
        PREFLIGHT_DAG_ID: lambda: build_preflight_dag(_config.administrations, str(CONFIG_PATH)),
        MAINTENANCE_DAG_ID: lambda: build_maintenance_dag(_config.administrations, str(CONFIG_PATH)),
        WATCHDOG_DAG_ID: lambda: build_watchdog_dag(str(CONFIG_PATH)),
    }
    for _dag_id, _build in _shared.items():
        if _config.administrations and _only in (None, _dag_id):
            _dag = _build()
            globals()[_dag.dag_id] = _dag
finally:
    gc.enable()
if _config.errors and _only is None:
    _broken = config_error_dag(CONFIG_PATH, _config.errors)
    globals()[_broken.dag_id] = _broken
