"""The facts several rooms need, defined once: the synced entities (their order and DAG), the DAG
ids and pool names, the time zone everything is scheduled and dated in, the daily cutoff, and where
the administrations config and the mapping overrides live. Imported at DAG-parse time: stdlib only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

TIMEZONE = "Europe/Amsterdam"
AMSTERDAM = ZoneInfo(TIMEZONE)
# The first run after this time of day (Amsterdam) reads every King record and reconciles.
DAILY_CUTOFF = (7, 0)
CONFIG_ENV = "KING_QICS_CONFIG"
CONFIG_NAME = "administrations.yaml"
PREFLIGHT_DAG_ID = "king_qics__preflight"
WATCHDOG_DAG_ID = "king_qics__alerts"  # the alerts' own checks (king_qics.alerts.watchdog)
# Manual only, for every administration (param ``administration``): accept failures as is.
MAINTENANCE_DAG_ID = "king_qics__maintenance"


class DagKind(StrEnum):
    MASTER_DATA = "master_data"
    PROJECTS_EMPLOYEES = "projects_employees"
    INVOICE_EXPORT = "invoice_export"


@dataclass(frozen=True)
class Entity:
    name: str  # also the mapping file (mappings/<name>.yaml) and the task id
    dag: DagKind
    after: tuple[str, ...] = ()  # the entities it looks up (synced first, in the same DAG)


ENTITIES = (
    Entity("vat_codes", DagKind.MASTER_DATA),
    Entity("payment_conditions", DagKind.MASTER_DATA),
    Entity("cost_centers", DagKind.MASTER_DATA),
    Entity("items", DagKind.MASTER_DATA, ("vat_codes",)),
    Entity("customers", DagKind.MASTER_DATA, ("vat_codes", "payment_conditions", "cost_centers")),
    Entity("employees", DagKind.PROJECTS_EMPLOYEES),
    Entity("projects", DagKind.PROJECTS_EMPLOYEES, ("employees",)),
)
ENTITY_NAMES = tuple(entity.name for entity in ENTITIES)
# The one task that syncs an entity outside its own DAG: the customers again right after the
# employees, for the manager links (DEB.MEDEWDEC) that waited for them.
CUSTOMER_MANAGERS = "customer_managers"
# The first task of a master-data DAG: whether the run has anything to do (king_qics.sync.gate).
GATE_TASK = "check_king"
# Every entity task: its id -> (its DAG, the entity it syncs), in the order the DAGs run them.
ENTITY_TASKS = {
    **{entity.name: (entity.dag, entity.name) for entity in ENTITIES},
    CUSTOMER_MANAGERS: (DagKind.PROJECTS_EMPLOYEES, "customers"),
}


def entities_of(kind: DagKind) -> list[Entity]:
    return [entity for entity in ENTITIES if entity.dag == kind]


def dag_id(administration_id: str, kind: DagKind | str) -> str:
    return f"king_qics__{administration_id}__{DagKind(kind).value}"


def pool_name(administration_id: str, api: str) -> str:
    """One pool per administration and external API (``king`` or ``qics``)."""
    return f"king_qics__{administration_id}__{api}"


def config_path(dag_file: str | Path | None = None) -> Path:
    """The administrations config: ``$KING_QICS_CONFIG``, else ``administrations.yaml`` in the
    include folder."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return include_dir(dag_file) / CONFIG_NAME


def include_dir(dag_file: str | Path | None = None) -> Path:
    """``include/`` beside the DAG folder (the DAG file's own folder, or Airflow's ``[core]
    dags_folder``): the administrations config, and overrides of the mappings' data files
    (``include/mappings/<file>``, king_qics.mapping.files)."""
    if dag_file is not None:
        dags = Path(dag_file).resolve().parent
    else:
        from airflow.configuration import conf

        dags = Path(conf.get("core", "dags_folder")).resolve()
    return dags.parent / "include"
