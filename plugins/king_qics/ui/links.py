"""The page's one-click actions on a failing record or invoice: "retry now" (the entity's DAG
with ``keys``, the invoice export with ``invoices``) and "accept as is" (the maintenance DAG),
each a link to the page's own trigger form with the DAG's params filled in.

The page's own form because Airflow 3.3's trigger form cannot be prefilled from a URL: its UI
(airflow/ui/dist of apache-airflow-core 3.3.2) has no trigger route and reads no ``conf`` query
parameter; it prefills only from an existing run ("Trigger again with config"). The form here
posts to Airflow's REST API (``POST /api/v2/dags/{dag_id}/dagRuns``) with the user's own Airflow
session, so Airflow authorizes the trigger and validates the params as its own form would.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from king_qics import catalog
from king_qics.state import ExportState

RETRY, ACCEPT = "retry now", "accept as is"
MAINTENANCE = "maintenance"  # the trigger form's name of catalog.MAINTENANCE_DAG_ID (not per administration)


def trigger_href(base: str, administration: str, kind: str, conf: dict) -> str:
    query = urlencode({"dag": kind, "conf": json.dumps(conf, separators=(",", ":"))})
    return f"{base}/administrations/{administration}/trigger?{query}"


def accept_href(base: str, administration: str, what: dict) -> str:
    """The maintenance DAG's form: the administration and what to accept filled in, the note empty."""
    conf = {"administration": administration, **what, "note": ""}
    return trigger_href(base, administration, MAINTENANCE, conf)


def actions(base: str, list_name: str, row: dict, administration: str) -> list[tuple[str, str]]:
    """(label, href) of the actions on one row of a list (none for most lists)."""
    if list_name == "failing":
        entity, key = row["entity"], str(row["king_key"])
        kind = catalog.ENTITY_TASKS.get(entity, (catalog.DagKind.MASTER_DATA, entity))[0]
        return [
            (RETRY, trigger_href(base, administration, kind, {"keys": {entity: [key]}})),
            (ACCEPT, accept_href(base, administration, {"accept_records": {entity: [key]}})),
        ]
    if list_name == "invoices_failed" and row.get("invoice_number"):
        number = str(row["invoice_number"]).strip()
        links = [
            (
                RETRY,
                trigger_href(base, administration, catalog.DagKind.INVOICE_EXPORT, {"invoices": [number]}),
            )
        ]
        if row.get("state") == ExportState.SELECTED:  # nothing sent to King: it may be accepted
            links.append((ACCEPT, accept_href(base, administration, {"accept_invoices": [number]})))
        return links
    return []


def trigger_purpose(kind: str, conf: dict) -> str:
    """One sentence on what the prefilled run does."""
    if kind == MAINTENANCE:
        return (
            "Accept as is: the failure leaves the failing list and is kept with your note (required). "
            "Nothing is written to King or Qics."
        )
    if "invoices" in conf:
        return (
            "Retry these invoices now (nothing else is exported). A booked invoice is exported again "
            "only when King no longer holds its booking."
        )
    return "Sync these records now, compared with Qics itself; the other entities are skipped."
