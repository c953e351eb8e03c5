"""KingFinanceHook: King Finance (iMUIS Online) Cloudswitch, ws1_xml.asmx flavour (SOAP).

- one Cloudswitch session per hook: Login on first use, KeepSession after a long idle spell, a new
  Login and one repeat of the call when King says the session ended, Logout on ``close()``/``with``;
- paged, typed table reads (GetStamtabelRecords) into pandas DataFrames;
- master-data writes (Create/Update/DeleteStamtabelRecord) with per-record outcomes in batch form;
- sales bookings (CreateJournaalpost, one or more BOE rows = one split) with the invoice PDF as a
  ``DIGDOS`` table, ``attach_pdf`` (UpdateJournaalpost) and ``find_booking`` for the exactly-once
  check after an unknown outcome.

Every dataset is built with lxml and sent as (escaped) text; every answer is parsed without DTDs,
entity expansion or network access. Partner key, environment code and session ids are registered
with the secrets masker and never written into messages.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any, NamedTuple

from lxml import etree

from king_qics.errors import (
    AuthenticationError,
    KingQicsError,
    OutcomeUnknownError,
    ProtocolError,
    RecordValidationError,
    SessionExpiredError,
)
from king_qics.hooks.base import ApiHook, mask
from king_qics.hooks.king_bookings import (
    BOOKING_FIELDS,
    KingBooking,
    PostedBooking,
    booking_key,
    group_bookings,
)
from king_qics.hooks.king_profile import KingProfile
from king_qics.hooks.king_reads import TableQuery, check_text, read_isolated, selection, selection_row
from king_qics.hooks.king_schema import (
    BOOL,
    DATE,
    DECIMAL,
    FIELD_TYPES,
    INT,
    MONEY,
    field_type,
    key_of,
    parse_value,
    to_wire,
)
from king_qics.hooks.king_soap import (
    Dataset,
    client_fault,
    dataset,
    envelope,
    parse_xml,
    primary_key,
    read_answer,
    row_texts,
)

log = logging.getLogger(__name__)


# Foutmelding texts that mean something to the hook. No catalogue of King's texts exists
# (research §2.4): these patterns are the one place to adjust once real answers are seen.
SESSION_EXPIRED_PATTERN = re.compile(
    r"sessie.*(verlopen|ongeldig|niet gevonden|bestaat niet)|session.*(expired|invalid|not found)|"
    r"niet ingelogd|not logged in",
    re.IGNORECASE,
)
# Any Login answering Result=false is a refusal; these texts mark other calls' refusals as auth.
AUTH_REFUSED_PATTERN = re.compile(
    r"partner ?key|omgevingscode|inloggen mislukt|login failed|geen toegang|access denied", re.IGNORECASE
)


class AdmPeriodState(NamedTuple):
    closed_for_users: bool  # closed for normal users (JRAFGESLGEBR/PNAFGESLGEBR)
    closed_definitively: bool  # closed also for accountants (JRAFGESL/PNAFGESL)


@dataclass
class RecordOutcome:
    """The result of one record of a batch write."""

    key: Any
    saved: bool
    primary_key: str | None = None
    error: str | None = None
    outcome_unknown: bool = False


class KingFinanceHook(ApiHook):
    """Hook for King Finance Cloudswitch (``king_finance`` connections)."""

    conn_name_attr = "king_conn_id"
    default_conn_name = "king_finance_default"
    conn_type = "king_finance"
    hook_name = "King Finance (Cloudswitch)"
    api_name = "king"

    default_page_size = 5000
    keepalive_after = 20 * 60.0  # seconds idle before a KeepSession (King ends sessions after 30 min)

    def __init__(
        self,
        king_conn_id: str = default_conn_name,
        *,
        page_size: int | None = None,
        keepalive_after: float | None = None,
        soap_version: str | None = None,
        **kwargs,
    ):
        super().__init__(king_conn_id, **kwargs)
        self.king_conn_id = king_conn_id
        self._page_size = page_size
        if keepalive_after is not None:
            self.keepalive_after = keepalive_after
        self._soap_version = soap_version
        self._session_id: str | None = None
        self._last_call = 0.0

    # -- connection ------------------------------------------------------------------------------

    @property
    def page_size(self) -> int:
        return self._setting(self._page_size, "page_size", self.default_page_size)

    @property
    def soap_version(self) -> str:
        return self._soap_version or self.profile.soap_version

    @cached_property
    def profile(self) -> KingProfile:
        """The wire profile of this connection (defaults, overridden by the connection's extras)."""
        return KingProfile.from_extras(self.connection.extra_dejson)

    @cached_property
    def credentials(self) -> tuple[str, str]:
        partner_key = self.extra("partner_key") or self.connection.password
        environment_code = self.extra("environment_code")
        mask(partner_key, environment_code)
        if not partner_key or environment_code in (None, ""):
            raise AuthenticationError(
                f"King connection {self.king_conn_id!r} needs a partner key and an environment code"
            )
        return str(partner_key), str(environment_code)

    def close(self) -> None:
        """Log out (best effort) and close the HTTP session."""
        if self._session_id is not None:
            try:
                self._soap("Logout", self._auth_params(), idempotent=True)
            except KingQicsError as exc:
                log.info("King Logout failed (%s); the session will time out by itself", type(exc).__name__)
            self._session_id = None
        super().close()

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.login()
            self.close()
        except Exception as exc:  # the UI shows the message
            return False, f"King Finance: {exc}"
        return True, "King Finance: logged in and out successfully"

    # -- SOAP transport --------------------------------------------------------------------------

    def is_transient_server_error(self, response) -> bool:
        """A SOAP Fault whose code says the request is wrong is final; every other 5xx may pass."""
        return client_fault(response.content) is None

    def _soap(
        self,
        operation: str,
        params: Sequence[tuple[str, Any]],
        *,
        idempotent: bool,
        before_attempt: Callable[[], None] | None = None,
    ) -> dict:
        """One SOAP call -> {"Result": bool, "Foutmelding": str, <output>: str | list[str]}."""
        data, headers = envelope(
            operation,
            params,
            soap_version=self.soap_version,
            dataset_encoding=self.profile.dataset_encoding,
        )
        response = self.send(
            operation,
            "POST",
            "",
            idempotent=idempotent,
            before_attempt=before_attempt,
            data=data,
            headers=headers,
        )
        self._last_call = time.monotonic()
        if response.status_code >= 500:
            reason = client_fault(response.content) or f"HTTP {response.status_code}"
            raise ProtocolError(f"King {operation}: the service refused the request: {reason}")
        if response.status_code != 200:
            raise ProtocolError(f"King {operation}: unexpected HTTP {response.status_code}")
        return read_answer(response.content, operation)

    # -- session ---------------------------------------------------------------------------------

    def _auth_params(self) -> list[tuple[str, Any]]:
        partner_key, environment_code = self.credentials
        return [
            ("PartnerKey", partner_key),
            ("Omgevingscode", environment_code),
            ("SessionId", self._session_id),
        ]

    def login(self) -> None:
        partner_key, environment_code = self.credentials
        answer = self._soap(
            "Login",
            [
                ("PartnerKey", partner_key),
                ("Omgevingscode", environment_code),
                ("SessionId", ""),
                ("Foutmelding", ""),
            ],
            idempotent=True,
        )
        session_id = str(answer.get("SessionId") or "").strip()
        if not answer["Result"] or not session_id:
            raise AuthenticationError(
                f"King refused the login of connection {self.king_conn_id!r}: "
                f"{answer['Foutmelding'] or 'no session id'}"
            )
        mask(session_id)
        self._session_id = session_id
        log.debug("King session opened for connection %s", self.king_conn_id)

    def _ensure_session(self) -> None:
        if self._session_id is None:
            self.login()
            return
        if time.monotonic() - self._last_call > self.keepalive_after:
            answer = self._soap("KeepSession", [*self._auth_params(), ("Foutmelding", "")], idempotent=True)
            if not answer["Result"]:
                self._session_id = None
                self.login()

    def call(
        self,
        operation: str,
        params: Sequence[tuple[str, Any]],
        *,
        idempotent: bool = True,
        before_attempt: Callable[[], None] | None = None,
    ) -> dict:
        """Call an operation inside the session; an ended session is renewed once, transparently.

        Returns the answer (see ``_soap``); a Result=false other than an ended session is returned
        for the caller to judge (its Foutmelding is King's reason). ``before_attempt`` runs before
        each attempt of the operation itself is sent (not before a Login).
        """
        for attempt in (1, 2):
            self._ensure_session()
            answer = self._soap(
                operation,
                [*self._auth_params(), *params, ("Foutmelding", "")],
                idempotent=idempotent,
                before_attempt=before_attempt,
            )
            if answer["Result"] or not SESSION_EXPIRED_PATTERN.search(answer["Foutmelding"]):
                if not answer["Result"] and AUTH_REFUSED_PATTERN.search(answer["Foutmelding"]):
                    raise AuthenticationError(f"King {operation}: {answer['Foutmelding']}")
                return answer
            log.info("King session ended (%s); logging in again (attempt %d)", operation, attempt)
            self._session_id = None
        raise SessionExpiredError(f"King {operation}: the session ended again right after a new login")

    # -- reads -----------------------------------------------------------------------------------

    def _records(self, answer: dict, operation: str) -> etree._Element:
        text = answer.get("Records") or ""
        if not isinstance(text, str) or not text.strip():
            return etree.Element("NewDataSet")
        return parse_xml(text.strip(), f"{operation} Records")

    def read_records(
        self,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
        max_result: int = 0,
        with_files: bool = False,
    ) -> Iterator[tuple[list[dict[str, str]], list[dict[str, str]]]]:
        """Yield ``(rows, files)`` per page; rows are {field: wire text} (files: PDF_BESTAND)."""
        query = TableQuery.of(table, fields, where, changed_since, order_by, max_result, with_files)
        page_size = page_size or self.page_size
        page, pages = 1, 1
        while page <= pages:
            rows, files, pages = self.read_page(query, page, page_size)
            yield rows, files
            page += 1

    def read_page(self, query: TableQuery, page: int, page_size: int) -> tuple[list, list, int]:
        """One page of a query: (rows, files, number of pages)."""
        values: dict[str, Any] = {"TABLE": query.table, "SELECTFIELDS": "\t".join(query.select)}
        if query.where:
            values["WHEREFIELDS"] = "\t".join(name.upper() for name, _, _ in query.where)
            values["WHEREOPERATORS"] = "\t".join(op.upper() for _, op, _ in query.where)
            values["WHEREVALUES"] = "\t".join(to_wire(value) for _, _, value in query.where)
        if query.changed_since is not None:
            values["MUTDATE_VA"] = to_wire(query.changed_since)  # the date only: the documented form
        values.update(
            ORDERBY=self.profile.orderby_separator.join(query.order),
            MAXRESULT=query.max_result,
            PAGESIZE=page_size,
            SELECTPAGE=page,
        )
        if query.with_files:
            values["PDF_BESTAND"] = " "  # presence asks for the files; a value keeps the tag
        answer = self.call("GetStamtabelRecords", [("Selectie", selection(values)), ("Records", "")])
        if not answer["Result"]:
            raise ProtocolError(f"King GetStamtabelRecords {query.table}: {answer['Foutmelding']}")
        records = self._records(answer, "GetStamtabelRecords")
        rows = [row_texts(el) for el in records if isinstance(el.tag, str) and el.tag == "DATA"]
        files = [row_texts(el) for el in records if isinstance(el.tag, str) and el.tag == "PDF_BESTAND"]
        meta = records.find("METADATA")
        if meta is not None and (meta.findtext("TOTALPAGES") or "").strip():
            pages = int(meta.findtext("TOTALPAGES").strip())
        else:
            count = meta.findtext("RECORDCOUNT") if meta is not None else None
            pages = (
                math.ceil(int(count) / page_size) if count else (page + 1 if len(rows) >= page_size else page)
            )
        return rows, files, pages

    def read_table_isolated(
        self,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
    ):
        """Like :meth:`read_table`, but a page King cannot serve (an HTTP 5xx that outlives the
        retries, e.g. for a record holding a control character) is narrowed down to the records it
        cannot serve: -> (DataFrame of every other record, {key: reason})."""
        query = TableQuery.of(table, fields, where, changed_since)
        return read_isolated(self, query, self.page_size, lambda rows: _frame(query.table, fields, rows))

    def read_table(
        self,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
    ):
        """All matching records of a King table as a typed DataFrame (every page, no duplicates)."""
        table = table.upper()
        seen: set[tuple] = set()
        rows: list[dict[str, str]] = []
        for page_rows, _ in self.read_records(table, fields, where, changed_since, order_by, page_size):
            rows.extend(_unseen(table, page_rows, seen))
        return _frame(table, fields, rows)

    def read_pages(
        self,
        table: str,
        fields: Sequence[str] | str = "*",
        where: Sequence[tuple[str, str, Any]] | None = None,
        changed_since: date | datetime | None = None,
        order_by: Sequence[str] | str | None = None,
        page_size: int | None = None,
    ) -> Iterator:
        """Like :meth:`read_table`, one typed DataFrame per page (bounded memory for big tables)."""
        seen: set[tuple] = set()
        for page_rows, _ in self.read_records(table, fields, where, changed_since, order_by, page_size):
            yield _frame(table.upper(), fields, list(_unseen(table.upper(), page_rows, seen)))

    def get_adm_info(self, tables: dict[str, Sequence[str]] | None = None) -> dict[str, dict[str, Any]]:
        """GetAdmInfo: {table: {field: value}} (numbers as int where they are numbers); a table
        answered in several rows (e.g. the period dates) as its last row, all rows in
        :meth:`get_adm_rows`."""
        return {table: rows[-1] for table, rows in self.get_adm_rows(tables).items() if rows}

    def get_adm_rows(self, tables: dict[str, Sequence[str]] | None = None) -> dict[str, list[dict[str, Any]]]:
        """GetAdmInfo, every row of every table asked: {table: [{field: value}, ...]}."""
        tables = tables or {
            "BASFIN": ["AANTPER"],
            "PERIODEINFO": ["JRAFGESL", "PNAFGESL", "JRAFGESLGEBR", "PNAFGESLGEBR"],
        }
        root = etree.Element("NewDataSet")
        for table, fields in tables.items():  # the same full row as every other selection
            row = selection_row({"TABLE": table, "SELECTFIELDS": "\t".join(fields), "MAXRESULT": 0})
            root.append(row)
        answer = self.call(
            "GetAdmInfo", [("Selectie", Dataset(etree.tostring(root, encoding="unicode"))), ("Records", "")]
        )
        if not answer["Result"]:
            raise ProtocolError(f"King GetAdmInfo: {answer['Foutmelding']}")
        out: dict[str, list[dict[str, Any]]] = {}
        for element in self._records(answer, "GetAdmInfo"):
            if isinstance(element.tag, str):
                out.setdefault(element.tag, []).append(
                    {
                        name: (int(text) if re.fullmatch(r"-?\d+", text or "") else text)
                        for name, text in row_texts(element).items()
                    }
                )
        return out

    def closed_period(self, year: int, period: int) -> AdmPeriodState:
        """Whether (year, period) is closed: for normal users, and definitively (also accountants).

        King's API user may post into closed periods, so this check is ours (research §2.1). A field
        pair (JR, PN) closes every period up to and including PN of JR, and all earlier years.
        """
        info = self.get_adm_info().get("PERIODEINFO", {})

        def closed(year_field: str, period_field: str) -> bool:
            closed_year, closed_period = info.get(year_field), info.get(period_field)
            if not isinstance(closed_year, int) or closed_year <= 0:
                return False
            return (year, period) <= (closed_year, closed_period if isinstance(closed_period, int) else 14)

        definitive = closed("JRAFGESL", "PNAFGESL")
        return AdmPeriodState(definitive or closed("JRAFGESLGEBR", "PNAFGESLGEBR"), definitive)

    # -- master-data writes ----------------------------------------------------------------------

    def create_record(self, table: str, values: dict[str, Any]) -> str:
        """CreateStamTabelRecord; returns King's primary key. A rejection raises RecordValidationError.

        Not idempotent: a lost answer raises OutcomeUnknownError (look the record up first).
        """
        table = table.upper()
        stamtabel = dataset([("METADATA", {"TABLE": table}), ("DATA", _upper(values))])
        answer = self.call(
            "CreateStamTabelRecord", [("Stamtabel", stamtabel), ("Primarykey", "")], idempotent=False
        )
        key = values.get(key_of(table)[0]) or values.get("ZKSL")
        if not answer["Result"]:
            raise RecordValidationError(key, answer["Foutmelding"] or "rejected without a reason")
        primary_key = answer.get("Primarykey")
        return ";".join(primary_key) if isinstance(primary_key, list) else str(primary_key or "")

    def _selection(self, table: str, key_field: str, key_value: Any) -> dict[str, Any]:
        check_text(key_value, "a key value")
        return {
            "TABLE": table.upper(),
            "WHEREFIELDS": key_field.upper(),
            "WHEREOPERATORS": "=",
            "WHEREVALUES": key_value,
        }

    def update_record(self, table: str, key_field: str, key_value: Any, values: dict[str, Any]) -> None:
        """UpdateStamtabelRecord of the record whose ``key_field`` equals ``key_value``."""
        mutatie = dataset(
            [("SELECTION", self._selection(table, key_field, key_value)), ("DATA", _upper(values))]
        )
        answer = self.call("UpdateStamtabelRecord", [("Mutatie", mutatie)], idempotent=True)
        if not answer["Result"]:
            raise RecordValidationError(key_value, answer["Foutmelding"] or "rejected without a reason")

    def delete_record(self, table: str, key_field: str, key_value: Any) -> None:
        mutatie = dataset([("SELECTION", self._selection(table, key_field, key_value))])
        answer = self.call("DeleteStamtabelRecord", [("Mutatie", mutatie)], idempotent=True)
        if not answer["Result"]:
            raise RecordValidationError(key_value, answer["Foutmelding"] or "rejected without a reason")

    def create_records(self, table: str, records: Iterable[dict[str, Any]]) -> list[RecordOutcome]:
        """Create each record; every rejection is reported, none stops the batch."""
        outcomes = []
        for values in records:
            key = values.get(key_of(table)[0]) or values.get("ZKSL")
            try:
                outcomes.append(RecordOutcome(key, True, primary_key=self.create_record(table, values)))
            except RecordValidationError as exc:
                outcomes.append(RecordOutcome(key, False, error=exc.message))
            except OutcomeUnknownError as exc:
                outcomes.append(RecordOutcome(key, False, error=str(exc), outcome_unknown=True))
        return outcomes

    def update_records(
        self, table: str, key_field: str, records: Iterable[dict[str, Any]]
    ) -> list[RecordOutcome]:
        """Update each record (found by its ``key_field`` value); rejections do not stop the batch."""
        outcomes = []
        for values in records:
            key = values.get(key_field)
            changes = {k: v for k, v in values.items() if k.upper() != key_field.upper()}
            try:
                self.update_record(table, key_field, key, changes)
                outcomes.append(RecordOutcome(key, True, primary_key=str(key)))
            except RecordValidationError as exc:
                outcomes.append(RecordOutcome(key, False, error=exc.message))
        return outcomes

    # -- bookings --------------------------------------------------------------------------------

    @staticmethod
    def _digdos(filename: str, content: bytes, description: str = "") -> dict[str, Any]:
        return {
            "FILENAME": filename,
            "FILEDESCRIPTION": description or filename,
            "FILE": base64.b64encode(content).decode("ascii"),
        }

    def post_journal_entry(
        self,
        rows: dict[str, Any] | Sequence[dict[str, Any]],
        pdf: tuple | dict | None = None,
        *,
        before_attempt: Callable[[], None] | None = None,
    ) -> PostedBooking:
        """CreateJournaalpost: one or more BOE rows (several rows = one split) -> the booking.

        ``pdf`` = (filename, bytes[, description]) or {"filename", "content", "description"}: sent
        as a ``DIGDOS`` table in the same call. Not idempotent: a lost answer raises
        OutcomeUnknownError; resolve it with :meth:`find_bookings` before posting again.
        """
        rows = [rows] if isinstance(rows, dict) else list(rows)
        if not rows:
            raise ValueError("a journal entry needs at least one BOE row")
        tables = [("BOE", _upper(row)) for row in rows]
        if pdf is not None:
            if isinstance(pdf, dict):
                tables.append(
                    ("DIGDOS", self._digdos(pdf["filename"], pdf["content"], pdf.get("description", "")))
                )
            else:
                tables.append(("DIGDOS", self._digdos(*pdf)))
        first_row = _upper(rows[0])
        answer = self.call(
            "CreateJournaalpost",
            [("Journaalpost", self._journal_dataset(tables)), ("Primarykey", None)],
            idempotent=False,
            before_attempt=before_attempt,
        )
        if not answer["Result"]:
            raise RecordValidationError(
                first_row.get("FACT"), answer["Foutmelding"] or "rejected without a reason"
            )
        echo = answer.get("Journaalpost") or ""
        first = parse_xml(echo, "CreateJournaalpost Journaalpost").find("BOE") if echo else None
        echoed = row_texts(first) if first is not None else {}
        answered = answer.get("Primarykey")
        answered = (answered[0] if answered else "") if isinstance(answered, list) else str(answered or "")
        key = primary_key(answered)
        if key is None and {"DAGB", "JR", "PN", "RG"} <= set(echoed):
            key = booking_key(echoed["DAGB"], echoed["JR"], echoed["PN"], echoed["RG"])
        if key is None:
            return self._read_back(first_row, answered)
        return PostedBooking(key, echoed.get("FACT") or None, answered)

    def _journal_dataset(self, tables: list[tuple[str, dict]]):
        """A Journaalpost dataset; with a file in it, typed when the profile says so (CS312)."""
        typed = self.profile.pdf_mechanism == "inline_schema" and any(tag == "DIGDOS" for tag, _ in tables)
        return dataset(tables, typed=typed)

    def _read_back(self, row: dict[str, Any], answered: str) -> PostedBooking:
        """The booking just posted, found by its marker (King answered without a usable key)."""
        marker = row.get(self.profile.booking_marker_field)
        found = (
            self.find_bookings(int(row["DAGB"]), (int(row["JR"]), int(row["JR"])), marker=str(marker))
            if marker
            else []
        )
        if len(found) != 1:
            raise ProtocolError(
                "King CreateJournaalpost: no usable Primarykey, no echoed booking, and "
                f"{len(found)} bookings carry its marker; check King for FACT {row.get('FACT')}"
            )
        return PostedBooking(found[0].key, found[0].fact, answered)

    def delete_journal_entry(self, booking_key: str) -> None:
        """DeleteJournaalpost (the preflight's write probe removes its booking)."""
        answer = self.call("DeleteJournaalpost", [("Primarykey", booking_key)], idempotent=True)
        if not answer["Result"]:
            raise RecordValidationError(booking_key, answer["Foutmelding"] or "refused without a reason")

    def attach_pdf(
        self,
        booking_key: str,
        filename: str,
        content: bytes,
        description: str = "",
        *,
        before_attempt: Callable[[], None] | None = None,
    ) -> None:
        """Attach a file to a booking (UpdateJournaalpost with only a DIGDOS table).

        Not idempotent (a repeat attaches a second copy): a lost answer raises OutcomeUnknownError;
        check with :meth:`booking_files` first.
        """
        journaalpost = self._journal_dataset([("DIGDOS", self._digdos(filename, content, description))])
        answer = self.call(
            "UpdateJournaalpost",
            [("Primarykey", booking_key), ("Journaalpost", journaalpost)],
            idempotent=False,
            before_attempt=before_attempt,
        )
        if not answer["Result"]:
            raise RecordValidationError(booking_key, answer["Foutmelding"] or "rejected without a reason")

    def _booking_where(self, booking_key: str) -> list[tuple[str, str, Any]]:
        parts = str(booking_key).split(";")
        if len(parts) != 4:
            raise ValueError("a King booking key is DAGB;JR;PN;RG")
        return list(zip(("DAGB", "JR", "PN", "RG"), ("=",) * 4, parts, strict=True))

    def booking_files(self, booking_key: str) -> list[dict[str, Any]]:
        """The files linked to a booking: [{"FILENAME", "FILEDESCRIPTION", "content": bytes}]."""
        files = []
        for _, page_files in self.read_records(
            "BOE",
            ["DAGB", "JR", "PN", "RG", "GRPROW"],
            where=self._booking_where(booking_key),
            with_files=True,
        ):
            for item in page_files:
                files.append(
                    {
                        "FILENAME": item.get("FILENAME"),
                        "FILEDESCRIPTION": item.get("FILEDESCRIPTION"),
                        "content": base64.b64decode(item.get("FILE") or ""),
                    }
                )
        return files

    def find_bookings(
        self, journal: int, years: tuple[int, int], *, fact: str | None = None, marker: str | None = None
    ) -> list[KingBooking]:
        """The bookings in ``journal`` of fiscal years ``years`` (first, last) whose FACT equals
        ``fact`` (King compares text case-insensitively) or whose marker field equals ``marker``;
        one :class:`KingBooking` per booking (its rows summed), in King's order."""
        marker_field = self.profile.booking_marker_field
        where: list[tuple[str, str, Any]] = [("DAGB", "=", journal), ("JR", ">=", years[0])]
        where.append(("JR", "<=", years[1]))
        if fact is not None:
            where.append(("FACT", "=", fact))
        if marker is not None:
            where.append((marker_field, "=", marker))
        fields = [*BOOKING_FIELDS, marker_field]
        rows = self._booking_rows(fields, where)
        if marker is not None and rows:  # a row without the marker still belongs to its booking
            groups = sorted({row.get("GRPROW") for row in rows if row.get("GRPROW")}, key=int)
            rows = [
                row
                for group in groups
                for row in self._booking_rows(fields, [("DAGB", "=", journal), ("GRPROW", "=", group)])
            ]
        return group_bookings(rows, marker_field)

    def _booking_rows(self, fields: list[str], where: list[tuple[str, str, Any]]) -> list[dict[str, str]]:
        rows = []
        for page_rows, _ in self.read_records("BOE", fields, where=where, order_by=["GRPROW", "RG"]):
            rows.extend(page_rows)
        return rows


def _upper(values: dict[str, Any]) -> dict[str, Any]:
    return {str(name).upper(): value for name, value in values.items()}


def _unseen(table: str, rows: list[dict[str, str]], seen: set[tuple]) -> Iterator[dict[str, str]]:
    """Rows whose key was not yet seen (a record that moved across a page boundary comes once)."""
    keys = key_of(table)
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        if key not in seen:
            seen.add(key)
            yield row


def _frame(table: str, fields: Sequence[str] | str, rows: list[dict[str, str]]):
    import pandas as pd

    if isinstance(fields, str) and fields.strip() == "*":
        columns: list[str] = []
        for row in rows:
            columns.extend(name for name in row if name not in columns)
        if not rows:
            columns = list(FIELD_TYPES.get(table, {}))
    else:
        columns = [fields.upper()] if isinstance(fields, str) else [name.upper() for name in fields]
    return pd.DataFrame({name: _column(table, name, [row.get(name) for row in rows]) for name in columns})


def _column(table: str, name: str, texts: list[str | None]):
    import pandas as pd

    kind = field_type(table, name)
    values = [parse_value(kind, text) for text in texts]
    if kind == INT:
        return pd.array(values, dtype="Int64")
    if kind == BOOL:
        return pd.array(values, dtype="boolean")
    if kind == DATE:
        return pd.to_datetime(pd.Series(values, dtype=object))
    if kind in (MONEY, DECIMAL):
        return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=object)
