"""The journal entries of KingFinanceHook (mixed in): a sales booking with its PDF
(CreateJournaalpost), a file attached later (UpdateJournaalpost), the booking look-ups of the
exactly-once check, and the removal of the preflight's probe."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from king_qics.errors import ProtocolError, RecordValidationError
from king_qics.hooks.king.bookings import (
    BOOKING_FIELDS,
    KingBooking,
    PostedBooking,
    booking_key,
    group_bookings,
)
from king_qics.hooks.king.soap import dataset, parse_xml, primary_key, row_texts


class Journal:
    """Mixed into KingFinanceHook (uses its ``call``, ``profile`` and ``read_records``)."""

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

    def booking_exists(self, booking_key: str) -> bool:
        """Whether King still holds the booking whose first row is ``booking_key`` (DAGB;JR;PN;RG)."""
        return bool(self._booking_rows(["DAGB", "JR", "PN", "RG"], self._booking_where(booking_key)))

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
