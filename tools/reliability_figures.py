"""Print RELIABILITY.md's figures section from what the reliability suite measured.

    .venv/bin/pytest -m reliability tests/reliability      # writes the JSON files
    .venv/bin/python tools/reliability_figures.py          # prints the Markdown

The suite writes one JSON file per part to $KQS_RELIABILITY_FIGURES (default: <tmp>/kqs-reliability,
see tests/reliability/conftest.py).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

FIGURES_DIR = Path(
    os.environ.get("KQS_RELIABILITY_FIGURES") or Path(tempfile.gettempdir()) / "kqs-reliability"
)


def load(name: str) -> dict:
    path = FIGURES_DIR / f"{name}.json"
    if not path.exists():
        sys.exit(f"{path} is missing: run the reliability suite first")
    return json.loads(path.read_text(encoding="utf-8"))


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def campaign() -> str:
    f = load("fault_campaign")
    runs = [
        [dag, f["runs_in_process"][dag], f["runs_killed"].get(dag, 0), f["runs_per_dag"][dag]]
        for dag in f["runs_per_dag"]
    ]
    kinds = [
        [kind, f["faults_by_api"]["king"].get(kind, 0), f["faults_by_api"]["qics"].get(kind, 0), n]
        for kind, n in sorted(f["faults_by_kind"].items())
    ]
    kinds.append(["**total**", "", "", f"**{f['faults_injected']}**"])
    staged = f["staged_situations"]
    invariants = [
        ["duplicate bookings (an invoice with more than one King booking)", f["duplicate_bookings"]],
        ["bookings of something that is not an exportable invoice", f["unexpected_bookings"]],
        ["invoices marked exported in Qics more than once", f["double_marks"]],
        [
            "invoices adopted that are not ours (a King booking of someone else taken for ours)",
            f["adopted_not_ours"],
        ],
        [
            f"near matches not failing by name (of {staged['stranger'] + staged['foreign']}: a hand booking "
            "with the same FACT, another Qics company's booking)",
            f["near_matches_not_failing"],
        ],
        [
            f"lost invoices (of {f['exportable_invoices']}: not booked, not `marked` or no EntityState)",
            f["lost_invoices"],
        ],
        [
            f"King master-data changes missing in Qics (of {f['king_changes']} changed records)",
            f["missing_changes"],
        ],
        [
            "state-store rows inconsistent with Qics (id, stored values, errors, duplicates)",
            f["state_store_problems"],
        ],
    ]
    final = ", ".join(
        f"{dag.split('__')[-1]}: " + " ".join(sorted(set(states.values())))
        for dag, states in f["final_run_task_states"].items()
    )
    return "\n\n".join(
        [
            f"{f['rounds']} rounds; task instances while faults were on: "
            + ", ".join(f"{state} {n}" for state, n in sorted(f["task_states_during_faults"].items()))
            + " (a failed task is retried by the next run).",
            table(["DAG", "runs in process", "runs killed (SIGKILL)", "runs"], runs),
            situations(f),
            table(["fault kind", "King", "Qics", "total"], kinds),
            f"Final clean run, task states: {final}.",
            table(["after the final clean run", "count"], invariants),
        ]
    )


def situations(f: dict) -> str:
    staged = f["staged_situations"]
    return (
        "Frozen workers (SIGSTOP while King answered their booking, past the claims' lease of "
        f"{f['claim_lease_seconds']} s, then SIGCONT): {f['runs_frozen_past_their_lease']}. Staged in "
        f"King and Qics: {staged['stranger']} hand booking with an invoice's number on another debtor, "
        f"{staged['foreign']} booking of another Qics company's invoice with the same number, "
        f"{staged['hand']} matching hand booking, {staged['spaced']} invoice numbers with a leading "
        "space and a trailing NBSP; King's sales journal numbers FACT itself "
        f"({f['bookings_numbered_by_king']} of our bookings carry King's number). Waited "
        f"{f['waited_for_dead_claims_seconds']} s before the final run for claims of killed runs to expire."
    )


def hostile_input() -> str:
    f = load("hostile_input")
    rows = [
        [case, outcome.replace("|", "\\|").replace("\n", " ")[:160]]
        for case, outcome in f["outcomes"].items()
    ]
    synced = sum(1 for o in f["outcomes"].values() if not o.startswith("failed"))
    return (
        f"{f['cases']} cases: {synced} synced or booked exactly (or skipped as documented), "
        f"{f['cases'] - synced} failed alone with a per-record reason; every other record unaffected.\n\n"
        + table(["case", "outcome"], rows)
    )


def hostile_server() -> str:
    rows = []
    for path in sorted(FIGURES_DIR.glob("hostile_server_*.json")):
        f = json.loads(path.read_text(encoding="utf-8"))
        growth = f.get("rss_growth_mb")
        rows.append(
            [
                path.stem.removeprefix("hostile_server_"),
                f.get("error_type", "ProtocolError"),
                f["error"].replace("|", "\\|"),
                "" if growth is None else f"{growth:.0f} MiB",
            ]
        )
    return table(["case", "error", "message", "peak RSS growth"], rows)


def secrets() -> str:
    f = load("secrets")
    return table(
        ["what", "count"],
        [
            ["DAG runs (3 DAGs x 2 administrations, faults on)", f["dag_runs"]],
            [
                "faults injected (King / Qics)",
                " / ".join(str(sum(f["faults_injected"][api].values())) for api in ("king", "qics")),
            ],
            ["OAuth refreshes during the run", f["refresh_grants"]],
            ["secret values + token/session-id shapes searched", f["secrets_searched"]],
            ["log records scanned", f["log_records_scanned"]],
            ["exceptions in the logs scanned", f["exceptions_in_logs"]],
            ["credential errors provoked and scanned (with tracebacks)", f["provoked_credential_errors"]],
            [
                "XCom rows / rendered-field rows in the metadata DB",
                f"{f['xcom_rows_in_db']} / {f['rendered_field_rows_in_db']}",
            ],
            ["places scanned (log text, exceptions, every DB table, raw DB files)", f["places_scanned"]],
            ["**leaks found**", f"**{len(f['leaks'])}**"],
        ],
    )


def main() -> None:
    print("### Fault campaign\n\n" + campaign())
    print("\n### Hostile input\n\n" + hostile_input())
    print("\n### Hostile server\n\n" + hostile_server())
    print("\n### Secrets\n\n" + secrets())


if __name__ == "__main__":
    main()
