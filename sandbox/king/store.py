"""In-memory data of the King emulator: administrations, their tables, sessions and queries."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from sandbox.king.schema import TABLES, ValueProblem, from_wire, like, sort_key, to_fixture
from sandbox.universe import KING_TEST_PARTNER_KEY

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OPERATORS = ("=", ">", ">=", "<", "<=", "LIKE", "<>")


def now() -> datetime:
    return datetime.now(AMSTERDAM).replace(microsecond=0)


def parse_mutdate(text: str) -> datetime:
    """MUTDATE_VA: ``dd-mm-yyyy`` or ``yyyy-mm-dd``, optionally `` HH:MM[:SS]`` (local time)."""
    text = text.strip().replace("T", " ")
    for fmt in (
        "%d-%m-%Y %H:%M:%S",
        "%d-%m-%Y %H:%M",
        "%d-%m-%Y",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d",
    ):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=AMSTERDAM)
        except ValueError:
            pass
    raise ValueProblem(f"MUTDATE_VA '{text}' is geen geldige datum")


class Record(dict):
    """One row: field -> Python value, plus ``mutdate`` (last change)."""

    __slots__ = ("mutdate",)


@lru_cache(maxsize=4096)
def _mutdate(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=AMSTERDAM)


_BOOL = {"J": True, "N": False, True: True, False: False}


@cache
def _converters(table: str) -> dict:
    """Fast fixture-value converters per field (fixtures are trusted: no length checks)."""

    def make(name: str, kind: str):
        def slow(value):
            if isinstance(value, str) and kind == "D" and "T" in value:
                value = value[:10]
            return from_wire(table, name, value, check_length=False)

        if kind in ("C", "T"):
            return lambda value: value if type(value) is str else slow(value)
        if kind == "N":
            return lambda value: value if type(value) is int else slow(value)
        if kind == "B":
            return lambda value: _BOOL[value] if value in _BOOL else slow(value)
        return slow

    return {name: make(name, kind) for name, (kind, _) in TABLES[table]["fields"].items()}


class Administration:
    def __init__(self, section: dict, loaded_at: datetime, base_dir: str | None):
        self.environment_code = str(section["environment_code"])
        self.adm_number = int(section.get("adm_number", 2000))
        self.name = section.get("name", f"Administratie {self.adm_number}")
        self.adm_info: dict[str, dict] = {
            table: dict(values) for table, values in (section.get("adm_info") or {}).items()
        }
        self.adm_info.setdefault("BASFIN", {"AANTPER": 12})
        self.fiscal_year_start = int(section.get("fiscal_year_start", 1))  # month 1..12
        self.adm_info.setdefault("BASALG", {"NAAM": self.name})
        self.tables: dict[str, list[Record]] = {name: [] for name in TABLES}
        for table, rows in (section.get("tables") or {}).items():
            if table not in TABLES:
                raise ValueError(f"king fixture: unknown table {table}")
            for row in rows:
                self.tables[table].append(self._fixture_record(table, row, loaded_at))
        self.documents: list[dict] = []
        for doc in section.get("documents") or []:
            doc = dict(doc)
            if "file_path" in doc:
                path = Path(base_dir or ".") / doc.pop("file_path")
                doc["FILE"] = base64.b64encode(path.read_bytes()).decode("ascii")
            self.documents.append(doc)
        self.next_rg = 1 + max((r.get("RG") or 0 for r in self.tables["BOE"]), default=0)
        self.next_grprow = 1 + max((r.get("GRPROW") or 0 for r in self.tables["BOE"]), default=0)
        # Journals that number invoices themselves: King gives every booking the journal's next
        # FACT, whatever FACT was sent (DOC-CJ: "FACT zal een waarde krijgen"; sandbox knob).
        self.fact_numbering: set[int] = {int(nr) for nr in section.get("journals_numbering_fact") or []}
        self.answer_shape: dict = dict(section.get("answer_shape") or {})  # CreateJournaalpost's answer

    @staticmethod
    def _fixture_record(table: str, row: dict, loaded_at: datetime) -> Record:
        record = Record()
        converters = _converters(table)
        for name, value in row.items():
            if name[0] == "_":
                continue
            converter = converters.get(name)
            if converter is None:
                raise ValueError(f"king fixture: unknown field {table}.{name}")
            record[name] = converter(value)
        mutdate = row.get("_mutdate")
        record.mutdate = _mutdate(mutdate) if mutdate else loaded_at
        return record

    def state(self) -> dict:
        tables = {}
        for table, rows in self.tables.items():
            tables[table] = [
                {
                    **{name: to_fixture(table, name, value) for name, value in row.items()},
                    "_mutdate": row.mutdate.isoformat(),
                }
                for row in rows
            ]
        return {
            "environment_code": self.environment_code,
            "adm_number": self.adm_number,
            "name": self.name,
            "adm_info": self.adm_info,
            "fiscal_year_start": self.fiscal_year_start,
            "tables": tables,
            "documents": self.documents,
            "journals_numbering_fact": sorted(self.fact_numbering),
        }

    # -- queries ---------------------------------------------------------------------------------

    def key_of(self, table: str, record: dict) -> tuple:
        return tuple(record.get(name) for name in TABLES[table]["key"])

    def find(self, table: str, **where) -> list[Record]:
        return [r for r in self.tables[table] if all(r.get(k) == v for k, v in where.items())]

    def exists(self, table: str, value) -> bool:
        key = TABLES[table]["key"][0]
        return any(r.get(key) == value for r in self.tables[table])


def compile_where(table: str, fields_text: str, operators_text: str, values_text: str):
    """TAB-separated AND conditions; a field part with ``;`` (or ``,``) is an OR over fields."""
    if not fields_text.strip():
        return []
    fields = fields_text.split("\t")
    operators = operators_text.split("\t")
    values = values_text.split("\t")
    if not (len(fields) == len(operators) == len(values)):
        raise ValueProblem("Aantal WHEREFIELDS, WHEREOPERATORS en WHEREVALUES komt niet overeen")
    known = TABLES[table]["fields"]
    conditions = []
    for field_part, operator, raw in zip(fields, operators, values, strict=True):
        operator = operator.strip().upper()
        if operator not in OPERATORS:
            raise ValueProblem(f"Onbekende operator '{operator}'")
        names = [name.strip().upper() for name in field_part.replace(",", ";").split(";") if name.strip()]
        alternatives = []
        for name in names:
            if name not in known:
                raise ValueProblem(f"Veld {name} is onbekend in tabel {table}")
            if operator == "LIKE":
                alternatives.append((name, operator, raw))
            else:
                alternatives.append((name, operator, from_wire(table, name, raw, check_length=False)))
        conditions.append(alternatives)
    return conditions


def _compare(value, operator: str, wanted) -> bool:
    if operator == "LIKE":
        if value is None:
            return False
        if isinstance(value, bool):
            value = "J" if value else "N"
        elif isinstance(value, date):
            value = value.strftime("%d-%m-%Y")
        elif isinstance(value, Decimal):
            value = format(value, "f").replace(".", ",")
        return like(wanted, str(value))
    if isinstance(value, str) and isinstance(wanted, str):
        value, wanted = value.casefold(), wanted.casefold()  # SQL Server default collation: case-insensitive
    if value is None or wanted is None:
        if operator == "=":
            return value == wanted
        return operator == "<>" and value != wanted
    try:
        if operator == "=":
            return value == wanted
        if operator == "<>":
            return value != wanted
        if operator == ">":
            return value > wanted
        if operator == ">=":
            return value >= wanted
        if operator == "<":
            return value < wanted
        return value <= wanted
    except TypeError:
        return False


def matches(record: dict, conditions) -> bool:
    return all(
        any(_compare(record.get(name), operator, wanted) for name, operator, wanted in alternatives)
        for alternatives in conditions
    )


def order_records(table: str, records: list[Record], order_by: str, separator: str = ";") -> list[Record]:
    """ORDERBY fields joined by ``separator`` (another separator makes the whole text one unknown
    field name, as a database would see it), each optionally followed by ``DESC``."""
    keys = []
    for part in order_by.split(separator):
        words = part.split()
        if not words:
            continue
        name = words[0].upper()
        if name not in TABLES[table]["fields"]:
            raise ValueProblem(f"ORDERBY: veld {name} is onbekend in tabel {table}")
        keys.append((name, len(words) > 1 and words[1].upper() == "DESC"))
    if not keys:
        keys = [(name, False) for name in TABLES[table]["key"]]
    for name, descending in reversed(keys):
        records = sorted(records, key=lambda r, n=name: sort_key(r.get(n)), reverse=descending)
    return records


class Sessions:
    """SessionId -> (environment code, last use). Idle sessions end after ``idle_minutes``."""

    def __init__(self, idle_minutes: float):
        self.idle_seconds = idle_minutes * 60
        self.sessions: dict[str, dict] = {}
        self.counter = 850

    def open(self, environment_code: str, partner_key: str, adm_number: int) -> str:
        self.counter += 1
        session_id = f"{secrets.randbelow(90000) + 10000}/{self.counter}@d{adm_number % 10000};CSW"
        self.sessions[session_id] = {
            "environment_code": environment_code,
            "partner_key": partner_key,
            "last": time.monotonic(),
        }
        return session_id

    def touch(self, session_id: str, environment_code: str, partner_key: str) -> bool:
        session = self.sessions.get(session_id)
        if session is None:
            return False
        if time.monotonic() - session["last"] > self.idle_seconds:
            del self.sessions[session_id]
            return False
        if session["environment_code"] != environment_code or session["partner_key"] != partner_key:
            return False
        session["last"] = time.monotonic()
        return True

    def close(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    def expire_all(self) -> None:
        self.sessions.clear()


class KingStore:
    def __init__(self) -> None:
        self.load({})

    def load(self, section: dict) -> None:
        loaded_at = now()
        self.partner_keys = [str(k) for k in section.get("partner_keys") or [KING_TEST_PARTNER_KEY]]
        self.session_idle_minutes = float(section.get("session_idle_minutes", 30))
        base_dir = section.get("_base_dir")
        self.administrations = {
            adm.environment_code: adm
            for adm in (Administration(s, loaded_at, base_dir) for s in section.get("administrations") or [])
        }
        self.sessions = Sessions(self.session_idle_minutes)

    def state(self) -> dict:
        return {
            "partner_keys": self.partner_keys,
            "session_idle_minutes": self.session_idle_minutes,
            "administrations": [adm.state() for adm in self.administrations.values()],
            "_active_sessions": len(self.sessions.sessions),
        }
