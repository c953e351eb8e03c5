"""What identifies an invoice in King, made in one place so a post and a look-up can never disagree:
its FACT (``invoice_fact``), our marker (``booking_marker``, read back by ``marker_of``), its day in
Amsterdam (``invoice_day``); and its PDF (the file name, whether Qics's file is a readable PDF).
Pure: no I/O."""

from __future__ import annotations

import io
import unicodedata
from datetime import date, datetime
from typing import Any

from king_qics.catalog import AMSTERDAM

FACT_LENGTH = 20
MARKER_PREFIX = "king-qics-sync: Qics company"


class InvoiceError(Exception):
    """This invoice cannot be booked as it is (data or configuration); the others go on."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def invoice_fact(number: Any) -> str:
    """The FACT we send for a Qics invoice number, and the one every look-up uses: Unicode-normalised
    (a non-breaking space is a space) and without surrounding white space."""
    text = unicodedata.normalize("NFKC", str(number or "")).strip()
    if not text:
        raise InvoiceError("the invoice has no invoice number")
    if len(text) > FACT_LENGTH or any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InvoiceError(f"invoice number {text!r} does not fit King's FACT (max {FACT_LENGTH})")
    return text


def booking_marker(company_id: int, invoice_id: int) -> str:
    """What every booking we post carries in King's marker field: it stays ours whatever King does
    to FACT, and names the Qics invoice for a person reading the booking."""
    return f"{MARKER_PREFIX} {int(company_id)} invoice {int(invoice_id)}"


def marker_of(remark: str) -> tuple[int, int] | None:
    """(company id, invoice id) of a marker found in a remark, or None."""
    position = remark.find(MARKER_PREFIX)
    if position < 0:
        return None
    words = remark[position + len(MARKER_PREFIX) :].split()
    if len(words) >= 3 and words[0].isdigit() and words[1] == "invoice" and words[2].isdigit():
        return int(words[0]), int(words[2])
    return None


def invoice_day(value: Any, what: str = "InvoiceDate") -> date:
    """A Qics date as the day it is in Europe/Amsterdam (a UTC date-time 2026-09-30T22:30Z is 1 October)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value
    else:
        text = str(value or "").strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvoiceError(f"{what} is not a date: {value!r}") from None
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(AMSTERDAM).date()


# -- the PDF -------------------------------------------------------------------------------------------


def check_pdf(content: bytes) -> str | None:
    """None when ``content`` is a readable PDF, else why not."""
    if not content.startswith(b"%PDF-"):
        return "the file Qics returns is not a PDF (no %PDF- header)"
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(content), strict=False)
        if len(reader.pages) < 1:
            return "the PDF from Qics has no pages"
    except Exception as exc:  # noqa: BLE001 - any parse failure means: not a usable PDF
        return f"the PDF from Qics cannot be read ({type(exc).__name__})"
    return None


def pdf_filename(fact: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in fact)
    return f"{safe}.pdf"
