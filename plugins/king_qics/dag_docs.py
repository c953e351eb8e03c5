"""The DAGs' documentation (``doc_md``, shown in the Airflow UI on each DAG's page), per DAG kind."""

from __future__ import annotations


def master_data(adm) -> str:
    schedule = adm.schedule
    return f"""
### King -> Qics master data: {adm.name}

Every {schedule.interval_minutes} minutes from {schedule.start} to {schedule.end} (Europe/Amsterdam),
reads King Finance (connection `{adm.king_conn_id}`) and writes new and changed records to
QicsMilestones company {adm.qics_company_id} (connection `{adm.qics_conn_id}`):
VAT codes, payment conditions and cost centers, then articles (items), then debtors (customers).
Only records whose mapped fields changed are written; deletions are never propagated.

Each task logs and returns counts (read, new, changed, unchanged, failed). A red task lists the
records Qics or the mapping rejected, with the reason; they are retried by every following run,
and clearing the task retries exactly those. Trigger with `full_refresh` to re-read and compare
everything (initial load, repair), or `dry_run` to see what would change without writing.

`reconcile` (after the entity tasks; on the first run after 07:00 each day, or when triggered with
`reconcile: true`, else skipped) compares every record and field King says Qics should hold with
what Qics holds, writes to neither, and logs and stores the differences (the King <-> Qics page).
Trigger with `{{"reconcile": true, "dry_run": true}}` for the report alone.

`keys` (per entity, King keys, e.g. `{{"keys": {{"customers": ["10006"]}}}}`) syncs exactly those
records now, compared with what Qics holds (no hash or watermark trusted or moved); the other
entities and the reconciliation are skipped; the task logs per key what happened.
"""


def projects_employees(adm) -> str:
    schedule = adm.schedule
    interval = adm.projects_employees_interval_minutes
    return f"""
### King -> Qics employees and projects: {adm.name}

Every {interval} minutes from {schedule.start} to {schedule.end} (Europe/Amsterdam): less often than
the other master data, because they change less often and to limit API calls. Reads King Finance
(connection `{adm.king_conn_id}`) and writes new and changed records to QicsMilestones company
{adm.qics_company_id} (connection `{adm.qics_conn_id}`):

- `employees`: King MEDEWERKER -> Qics EmployeeCompany;
- `projects`: King {adm.projects_table} (cost units) -> Qics Project, after the employees (a
  project's manager is an employee, its customer a debtor synced by the master-data DAG);
- `customer_managers`: customers synced before their manager (DEB.MEDEWDEC) existed in Qics get
  the link right after the employees are in.

Only records whose mapped fields changed are written; deletions are never propagated. Counts,
failures, `full_refresh` and `dry_run` work as in the master-data DAG.
"""


def invoice_export(adm) -> str:
    schedule = adm.schedule
    return f"""
### Qics -> King invoice export: {adm.name}

Every {schedule.interval_minutes} minutes from {schedule.start} to {schedule.end} (Europe/Amsterdam),
books each processed QicsMilestones invoice of company {adm.qics_company_id} dated on or after
{adm.book_invoices_from} as exactly one sales booking in King journal {adm.sales_journal} (connection
`{adm.king_conn_id}`), with its PDF (missing PDF: `{adm.missing_pdf}`), and marks it exported in Qics
(an EntityState carrying the King booking key). Fully written-off invoices are skipped.

- `select`: reads the processed invoices and records new ones in the export ledger;
- `export`: works every open invoice through selected -> booking_sent -> booked -> pdf_attached ->
  marked; an invoice whose booking outcome is unknown is looked up in King before anything is
  posted again. It fails at the end with a table of invoice number + reason (also written to Qics
  as an EntityState error); every following run retries them, clearing it retries only those;
- `report`: the run's counts and the ledger's backlog (failing and waiting invoices).

`dry_run`: builds and logs the bookings, posts nothing, leaves the ledger as it is.
`invoices` (invoice numbers) retries exactly those now; a booked one is exported again only once
King no longer holds its booking (checked first). See docs/invoice_export.md.
"""


def maintenance() -> str:
    return """
### Maintenance (manual only): accept failures as is

One DAG for every administration: trigger it with the `administration` and what is to be done
(the King <-> Qics page's *accept as is* links fill both in); each task is skipped when its
params are empty.

- `accept_records` (per entity, King keys) with a `note`: the records leave the failing list,
  accepted as is; the failure, the note and who triggered are kept and shown on the King <-> Qics
  page. While a record fails with that same reason it stays off the list and no task fails for it;
  it is listed again when it fails for another reason, and the acceptance ends when it syncs.
- `accept_invoices` (Qics invoice numbers) with a `note`: the invoices are never booked by this
  program (ledger: skipped). Only an invoice nothing was sent of to King; others are refused.
- A new Qics token chain is not started here: a token typed into a trigger form stays in the
  run's params in Airflow's metadata database. Use the *Re-authorize Qics* form of the
  administration's King <-> Qics page (README, Troubleshooting).
"""
