"""What the invoice-export tests share: connections at the sandboxes, an exporter, King's bookings
as the sandbox holds them, and the staging of what people do in King by hand."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

from king_qics.config import load_administrations
from king_qics.hooks.king import KingFinanceHook
from king_qics.hooks.qics import QicsMilestonesHook
from king_qics.sync.invoices import InvoiceExport

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from demo_home import sandbox_connections  # noqa: E402

FAST = {"timeout": 3, "backoff_initial": 0.02, "backoff_max": 0.2, "max_attempts": 6}
NOORD = load_administrations(ROOT / "include" / "administrations.yaml").get("noord")
NOORD_KING = "00000"  # noord's environment code in the demo fixture
# demo company 1: what a run books (invoice number -> rows), fails, waits for
BOOKABLE = {"N2026001", "N2026002", "N2026003"}


def use_sandbox_connections(sandbox, monkeypatch, **king_extra) -> None:
    """Connections king_noord/king_zuid/qics_sandbox at the sandboxes, with fast transport."""
    for conn_id, conn in sandbox_connections(sandbox.king_url, sandbox.qics_url).items():
        extra = {**json.loads(conn["extra"]), **FAST}
        if conn_id.startswith("king_"):
            extra.update(king_extra)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({**conn, "extra": extra}))


def set_king_extra(monkeypatch, conn_id: str = "king_noord", **values) -> None:
    """Change extras of a King connection given as AIRFLOW_CONN_* (e.g. the outcome grace)."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    conn = json.loads(os.environ[name])
    conn["extra"] = {**conn["extra"], **values}
    monkeypatch.setenv(name, json.dumps(conn))


def exporter(env, run_id: str | None = None, **adm_changes) -> InvoiceExport:
    adm = NOORD.model_copy(update=adm_changes)
    king = KingFinanceHook(adm.king_conn_id)
    qics = QicsMilestonesHook(adm.qics_conn_id, token_store=env.store.tokens)
    return InvoiceExport(adm, king, qics, env.store, run_id=run_id)


def run(env, **adm_changes):
    export = exporter(env, **adm_changes)
    try:
        return export.run()
    finally:
        export.king.close()
        export.qics.close()


def bookings(env, adm=0) -> dict[str, list[dict]]:
    rows = env.state("king")["administrations"][adm]["tables"]["BOE"]
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(str(row["FACT"]), []).append(row)
    return out


def booking_groups(env, adm=0) -> dict[int, list[dict]]:
    """King's bookings by GRPROW (one booking = one GRPROW)."""
    out: dict[int, list[dict]] = {}
    for row in env.state("king")["administrations"][adm]["tables"]["BOE"]:
        out.setdefault(row["GRPROW"], []).append(row)
    return out


def documents(env, adm=0) -> list[dict]:
    return env.state("king")["administrations"][adm].get("documents", [])


def entity_states(env) -> list[dict]:
    return env.state("qics")["entities"].get("EntityState", [])


def assert_booked_once(env, numbers):
    booked = bookings(env)
    grprows = {number: {r["GRPROW"] for r in booked[number]} for number in numbers}
    assert all(len(groups) == 1 for groups in grprows.values()), grprows  # one booking each
    docs = Counter(d["GRPROW"] for d in documents(env))
    for number in numbers:
        assert docs[next(iter(grprows[number]))] == 1, f"{number}: one PDF"


def hand_booking(env, *rows: dict, environment_code: str = NOORD_KING, program: str = "HAND") -> str:
    """A booking made in King by a person (or another program); returns its key."""
    body = {"environment_code": environment_code, "rows": list(rows), "program": program}
    return env.admin("king", "POST", "bookings", json=body)["key"]


def boe(fact: str, debtor: int, day: str, net: str, vat: str, *, period: int | None = None, **extra) -> dict:
    """One BOE row of the sales journal 70 (VAT code 1 = 21 %)."""
    year, month = int(day[:4]), int(day[5:7])
    return {
        "DAGB": 70,
        "JR": year,
        "PN": period or month,
        "DAT": day,
        "REK": debtor,
        "TEGREK": 8000,
        "BTW": 1,
        "BEDRBOEK": net,
        "BEDRBTW": vat,
        "FACT": fact,
        "BOEKSTUK": fact,
        **extra,
    }


def total(rows: list[dict]) -> Decimal:
    return sum((Decimal(str(r["BEDRBOEK"])) + Decimal(str(r["BEDRBTW"])) for r in rows), Decimal(0))


class SimulatedCrash(BaseException):
    """Stops a run dead (like SIGKILL) right after a ledger move: nothing after it runs."""


def crash_after(export: InvoiceExport, monkeypatch, state: str, *, times: int = 1) -> None:
    """Make ``export`` die right after its ``times``-th successful ledger move into ``state``."""
    move = export.ledger.move
    seen = {"n": 0}

    def moving(claim, expected, to, **values):
        moved = move(claim, expected, to, **values)
        if moved and to == state:
            seen["n"] += 1
            if seen["n"] == times:
                raise SimulatedCrash(f"simulated crash after {state}")
        return moved

    monkeypatch.setattr(export.ledger, "move", moving)
