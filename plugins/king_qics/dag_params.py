"""The DAGs' params as the trigger form shows them (imported at DAG-parse time: airflow.sdk's Param
and the catalog only). Each schema names its draft: see ``flag``."""

from __future__ import annotations

from airflow.sdk import Param

from king_qics import catalog

JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"


def common_params() -> dict:
    """The params every scheduled DAG has."""
    return {
        "full_refresh": flag("Re-read everything and compare with Qics"),
        "dry_run": flag("Log what would change; write nothing"),
    }


def flag(description: str) -> Param:
    """A boolean DAG param, off by default (a checkbox in the trigger form).

    The schema names its draft: Airflow validates every param of every DAG at parse time, and
    checking a schema against draft 7's meta-schema costs a quarter of the default 2020-12's, which
    is a fifth of the parse time with hundreds of administrations (bench/RESULTS.md, DAG parse)."""
    return Param(False, type="boolean", description=description, **{"$schema": JSON_SCHEMA_DRAFT})


def keys_param(kind: catalog.DagKind | None, accept: bool = False) -> Param:
    """Per entity (of DAG ``kind``; None: every entity), King keys: ``keys`` syncs exactly those
    records now (the other entities' tasks are skipped), ``accept_records`` (``accept``) takes
    them off the failing list. Empty: nothing named."""
    names = [entity.name for entity in catalog.ENTITIES if kind is None or entity.dag == kind]
    example = f'E.g. {{"{names[-1] if kind else "customers"}": ["10006"]}}. Entities: ' + ", ".join(names)
    if accept:
        title, what = "Records to accept as is", "Per entity, the King keys to take off the failing list. "
    else:
        title = "King keys to sync now"
        what = (
            "Per entity, the King keys to sync now, compared with Qics itself (hashes and watermarks "
            "ignored); the other entities are skipped. "
        )
    return Param(
        {},
        type="object",
        title=title,
        description=what + example,
        properties={name: {"type": "array", "items": {"type": "string"}} for name in names},
        additionalProperties=False,
        **{"$schema": JSON_SCHEMA_DRAFT},
    )


def invoices_param(accept: bool = False) -> Param:
    """Qics invoice numbers: ``invoices`` retries exactly those now; ``accept_invoices``
    (``accept``) never books them. Empty: nothing named."""
    if accept:
        title = "Invoices to accept as is"
        description = (
            "Qics invoice numbers (one per line) never to be booked by this program (not yet sent to King)"
        )
    else:
        title = "Invoices to retry now"
        description = (
            "Qics invoice numbers (one per line) to retry now, whatever they wait for; nothing else is "
            "exported. A booked invoice is exported again only when King no longer has its booking."
        )
    return Param(
        [],
        type="array",
        items={"type": "string"},
        title=title,
        description=description,
        **{"$schema": JSON_SCHEMA_DRAFT},
    )


def maintenance_params(administration_ids: list[str]) -> dict:
    """The maintenance DAG's form: the administration, a note and what to accept as is."""
    return {
        "administration": Param(
            "",
            type="string",
            enum=["", *administration_ids],
            title="Administration",
            description="Whose failures are accepted as is (needed to accept)",
            **{"$schema": JSON_SCHEMA_DRAFT},
        ),
        "note": Param(
            "",
            type="string",
            title="Note",
            description="Why it is accepted as is (needed to accept; kept and shown with it)",
            **{"$schema": JSON_SCHEMA_DRAFT},
        ),
        "accept_records": keys_param(None, accept=True),
        "accept_invoices": invoices_param(accept=True),
    }
