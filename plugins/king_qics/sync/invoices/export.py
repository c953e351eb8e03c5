"""The invoice export's state machine: each open ledger row, under a fenced claim, from ``selected``
through ``booking_sent -> booked -> pdf_attached`` to ``marked`` (docs/invoice_export.md).

Rules that make it exactly once:
- a booking is looked up in King (our marker first, then FACT) before every post, and adopted only
  when it matches (``adoption.adoptable``); a near match is a per-invoice failure;
- every attempt that goes on the wire is stamped first (``InvoiceLedger.stamp_attempt``): the
  outcome-unknown window starts there, and a run whose claim was taken over cannot send;
- one run never posts an invoice twice: an unknown outcome of its own post waits for the next
  run's look-up; another run's unknown outcome is posted again only after the King profile's
  ``outcome_grace_seconds`` since its last attempt;
- the claim's lease is derived from the hooks' worst case, and refused when that outgrows it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import UTC, timedelta
from functools import cached_property

from king_qics.errors import (
    AuthenticationError,
    KingQicsError,
    OutcomeUnknownError,
    ProtocolError,
    RecordValidationError,
    TransientError,
)
from king_qics.hooks.king.bookings import KingBooking, PostedBooking
from king_qics.state import (
    EXPORT_OPEN_STATES,
    ON_DEMAND_STATES,
    REEXPORT_FROM,
    Claim,
    ClaimLost,
    ExportState,
    InvoiceLedger,
    StateStore,
    utcnow,
)
from king_qics.sync.invoices.adoption import adoptable
from king_qics.sync.invoices.after_booking import AfterBooking, InvoicePending
from king_qics.sync.invoices.booking import Booking, KingRefs, NothingToBook, booking_from_json, build_booking
from king_qics.sync.invoices.identity import InvoiceError, pdf_filename
from king_qics.sync.invoices.lease import claim_lease
from king_qics.sync.invoices.on_demand import OnDemand, Refused, named_rows
from king_qics.sync.invoices.report import ExportReport
from king_qics.sync.invoices.selection import InvoiceSelection, king_refs

log = logging.getLogger(__name__)

DATA_SOURCE = "king-qics-sync"
MAX_CONSECUTIVE_TRANSIENT = 3  # then the API is considered down: stop, let Airflow retry the task
MAX_STEPS = 8  # selected -> ... -> marked takes at most 6 moves; more is a bug
S = ExportState


def _number(row) -> str:
    return str(row.invoice_number or f"id {row.invoice_id}").strip()


class InvoiceExport(AfterBooking, OnDemand):
    """Exports one administration's processed Qics invoices to King, exactly once."""

    data_source = DATA_SOURCE

    def __init__(self, administration, king, qics, store: StateStore, *, run_id: str | None = None):
        self.adm = administration
        self.king = king
        self.qics = qics
        self.store = store
        self.run_id = run_id
        self.ledger = InvoiceLedger(store, administration.id)
        self.selection = InvoiceSelection(administration, qics, self.ledger)
        # The claim owner: one per DAG run, so Airflow's retry of a run's export whose worker died
        # mid-invoice takes over the claims its earlier try left at once (a new epoch fences the
        # earlier try out, should it still be alive); another run waits for the lease.
        self.token = hashlib.sha256(f"run:{run_id}".encode()).hexdigest()[:32] if run_id else uuid.uuid4().hex
        self._pdfs: dict[int, bytes | None] = {}

    @cached_property
    def lease(self) -> timedelta:
        return claim_lease(self.king, self.qics)

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.king.profile.outcome_grace_seconds)

    @property
    def marker_field(self) -> str:
        return self.king.profile.booking_marker_field

    # -- the flow -------------------------------------------------------------------------------

    def select_from_qics(
        self,
        *,
        dry_run: bool = False,
        report: ExportReport | None = None,
        full_refresh: bool = False,
        numbers: set[str] | None = None,
    ) -> list[dict]:
        report = report or ExportReport(self.adm.id, dry_run=dry_run)
        return self.selection.select_from_qics(
            dry_run=dry_run, report=report, full_refresh=full_refresh, numbers=numbers
        )

    def run(self, *, dry_run: bool = False) -> ExportReport:
        """Select and export in one go (what the tests and the dry run use)."""
        report = ExportReport(self.adm.id, dry_run=dry_run)
        snapshots = self.select_from_qics(dry_run=dry_run, report=report)
        return self.export(
            dry_run=dry_run,
            report=report,
            snapshots=snapshots if dry_run else None,
            candidate_ids={int(s["InvoiceHeaderId"]) for s in snapshots},
        )

    def export(
        self,
        *,
        dry_run: bool = False,
        report: ExportReport | None = None,
        snapshots: list[dict] | None = None,
        candidate_ids: set[int] | None = None,
        numbers: set[str] | None = None,
    ) -> ExportReport:
        """Work every open invoice of the ledger to ``marked`` (new ones and earlier failures).

        ``candidate_ids``: the invoices the select step saw as processed in Qics this run. A
        ``selected`` row not among them is not booked (Qics no longer lists it as processed); rows
        past ``selected`` are always worked on (they may be booked already). ``numbers``: on
        demand, only these invoices, now (king_qics.sync.invoices.on_demand).
        """
        report = report or ExportReport(self.adm.id, dry_run=dry_run)
        if dry_run:
            return self._dry_run(report, snapshots, numbers)
        lease = self.lease  # refuses a configuration whose calls could outlive a claim, before anything
        rows = []
        listed = (
            self.ledger.rows(EXPORT_OPEN_STATES)
            if numbers is None
            else named_rows(self.ledger, numbers, report)
        )
        for row in listed:
            if candidate_ids is not None and row.state == S.SELECTED and row.invoice_id not in candidate_ids:
                report.wait(
                    _number(row),
                    "not (or no longer) a processed invoice in Qics since the cutoff; not booked",
                )
                continue
            rows.append(row)
        report.worked_on += len(rows)
        if not rows:
            log.info("%s invoice export: nothing to export", self.adm.id)
            return report
        to_book = (S.SELECTED, *REEXPORT_FROM) if numbers is not None else (S.SELECTED,)
        snapshots = [json.loads(r.invoice_json) for r in rows if r.state in to_book and r.invoice_json]
        refs = king_refs(self.king, snapshots)
        transient_in_a_row = 0
        for row in rows:
            number = _number(row)
            states = EXPORT_OPEN_STATES if numbers is None else ON_DEMAND_STATES
            claim = self.ledger.claim(row.invoice_id, self.token, lease, states)
            if claim is None:
                report.wait(number, "claimed by another run at the moment")
                continue
            try:
                if numbers is not None and row.booking_key and S(row.state) in REEXPORT_FROM:
                    self.check_king_first(claim, self.ledger.get(row.invoice_id))
                self._export_one(claim, refs, report)
                transient_in_a_row = 0
            except Refused as exc:
                report.fail(number, exc.reason)
            except ClaimLost:
                report.wait(
                    number, "taken over by another run (this run's claim ran out); that run finishes it"
                )
            except InvoicePending as exc:
                self.ledger.set(claim, note=exc.reason, last_error=None)
                report.wait(number, exc.reason)
                transient_in_a_row = 0
            except InvoiceError as exc:
                self._failed(claim, number, exc.reason, report)
                transient_in_a_row = 0
            except AuthenticationError:
                raise
            except TransientError as exc:
                self._failed(claim, number, f"temporary: {exc}", report, tell_qics=False)
                transient_in_a_row += 1
                if transient_in_a_row >= MAX_CONSECUTIVE_TRANSIENT:
                    raise TransientError(
                        f"{transient_in_a_row} invoices in a row failed on API faults; stopping "
                        f"(the ledger keeps every step; a retry resumes). Last: {exc}"
                    ) from exc
            except KingQicsError as exc:  # protocol errors, refusals the steps did not expect
                self._failed(claim, number, str(exc), report)
            finally:
                self.ledger.release(claim)
        self._log(report)
        return report

    # -- one invoice ----------------------------------------------------------------------------

    def _export_one(self, claim: Claim, refs: KingRefs, report: ExportReport) -> None:
        posted = False  # this run sent its booking: it never sends it again
        for _ in range(MAX_STEPS):
            row = self.ledger.get(claim.invoice_id)
            state = S(row.state)
            if state is S.SELECTED:
                posted = self._from_selected(claim, row, refs, report) or posted
            elif state is S.BOOKING_SENT:
                posted = self._resolve_sent(claim, row, refs, report, posted) or posted
            elif state is S.BOOKED:
                self._attach(claim, row)
            elif state is S.PDF_ATTACHED:
                self._mark(claim, row, report)
            else:  # marked / skipped: done
                return
        raise ProtocolError(f"invoice {_number(row)}: the export did not settle in {MAX_STEPS} steps")

    def _from_selected(self, claim: Claim, row, refs: KingRefs, report: ExportReport) -> bool:
        invoice = json.loads(row.invoice_json) if row.invoice_json else {}
        try:
            booking = self._build(invoice, refs)
        except NothingToBook as exc:
            self._move(claim, S.SELECTED, S.SKIPPED, note=exc.reason, last_error=None)
            report.skipped += 1
            return False
        pdf = self._pdf(row.invoice_id)
        if pdf is None and self.adm.missing_pdf == "wait":
            raise InvoicePending("waiting for the invoice PDF in Qics (missing_pdf: wait)")
        # Before the first post too: a booking King holds without the ledger knowing (booked by
        # hand, a lost or reset state store) is adopted when it matches, never duplicated.
        found = self._look_up(booking)
        if found is not None:
            self._adopt(claim, S.SELECTED, found, report)
            return False
        if refs.closed(booking.year, booking.period):
            raise InvoiceError(
                f"period {booking.year}/{booking.period} is closed in King; book it by hand (the booking is "
                "adopted when it matches this invoice) or reopen the period"
            )
        self._post(claim, S.SELECTED, booking, pdf, report)
        return True

    def _build(self, invoice: dict, refs: KingRefs) -> Booking:
        return build_booking(
            invoice,
            journal=self.adm.sales_journal,
            refs=refs,
            company_id=self.adm.company_id,
            marker_field=self.marker_field,
            credit_note_type=self.qics.profile.credit_note_type,
        )

    def _look_up(self, booking: Booking) -> KingBooking | None:
        """The booking of this invoice in King (adoptable), None, or InvoiceError (near match)."""
        years = (booking.year, booking.year + 1)  # a hand booking may sit in the next fiscal year
        journal = self.adm.sales_journal
        by_marker = self.king.find_bookings(journal, years, marker=booking.marker)
        by_fact = [] if by_marker else self.king.find_bookings(journal, years, fact=booking.fact)
        return adoptable(booking, self.adm.company_id, by_marker, by_fact)

    def _post(self, claim: Claim, from_state: ExportState, booking: Booking, pdf, report) -> None:
        """-> booking_sent -> (the post) -> booked / pdf_attached; an unknown outcome stays sent."""
        row = self.ledger.get(claim.invoice_id)
        fresh = {"sent_at": None} if from_state is S.SELECTED else {}  # NULL: never on the wire yet
        self._move(
            claim,
            from_state,
            S.BOOKING_SENT,
            booking_json=booking.to_json(),
            with_pdf=pdf is not None,
            post_attempts=(row.post_attempts or 0) + 1,
            **fresh,
        )
        attachment = (pdf_filename(booking.fact), pdf, f"Factuur {booking.fact}") if pdf is not None else None
        try:
            posted = self.king.post_journal_entry(
                booking.rows, pdf=attachment, before_attempt=lambda: self.ledger.stamp_attempt(claim)
            )
        except RecordValidationError as exc:
            # King said no: nothing was booked. Back to selected, with King's reason.
            self._move(claim, S.BOOKING_SENT, S.SELECTED)
            raise InvoiceError(f"King refused the booking: {exc.message}") from None
        except OutcomeUnknownError as exc:
            log.warning("invoice %s: %s; it is looked up before anything is sent again", booking.fact, exc)
            self.ledger.set(claim, note=f"outcome unknown: {exc}")
            return
        self._booked(claim, posted, booking, with_pdf=pdf is not None)
        report.booked += 1

    def _booked(self, claim: Claim, posted: PostedBooking, booking: Booking, *, with_pdf: bool) -> None:
        king_fact = posted.fact or booking.fact
        self._move(
            claim,
            S.BOOKING_SENT,
            S.PDF_ATTACHED if with_pdf else S.BOOKED,
            booking_key=posted.key,
            king_fact=king_fact,
            booked_at=utcnow(),
            found_by_lookup=False,
            note=None,
        )
        renumbered = f" (King numbered it {king_fact})" if king_fact != booking.fact else ""
        log.info("invoice %s booked in King as %s%s", booking.fact, posted.key, renumbered)

    def _adopt(self, claim: Claim, from_state: ExportState, found: KingBooking, report, ours=False) -> None:
        self._move(
            claim,
            from_state,
            S.BOOKED,
            booking_key=found.key,
            king_fact=found.fact,
            booked_at=utcnow(),
            found_by_lookup=True,
            note=None,
            last_error=None,
        )
        if ours:  # this run's own post landed; only its answer was lost
            report.booked += 1
        else:
            report.already_booked += 1
        log.info("invoice %s is in King as %s (FACT %s, found by look-up)", found.fact, found.key, found.fact)

    def _resolve_sent(self, claim: Claim, row, refs: KingRefs, report, posted_this_run: bool) -> bool:
        """A booking was (maybe) sent and its outcome is unknown: look it up before anything else."""
        booking = booking_from_json(row.booking_json, row.invoice_id, self.marker_field)
        found = self._look_up(booking)
        if found is not None:
            self._adopt(claim, S.BOOKING_SENT, found, report, ours=posted_this_run)
            return False
        sent_at = (
            row.sent_at.replace(tzinfo=UTC) if row.sent_at and row.sent_at.tzinfo is None else row.sent_at
        )
        if posted_this_run:
            raise InvoicePending(
                "outcome unknown: the booking this run sent is not (yet) in King; the next run looks it up "
                "before anything is sent again"
            )
        if sent_at is not None and utcnow() - sent_at < self.grace:
            raise InvoicePending(
                f"outcome unknown: the booking sent at {sent_at:%H:%M:%S} UTC is not (yet) in King; "
                f"looked up again until {int(self.grace.total_seconds())} s have passed, then sent again"
            )
        if refs.closed(booking.year, booking.period):
            raise InvoiceError(
                f"period {booking.year}/{booking.period} was closed in King before it was booked"
            )
        pdf = self._pdf(row.invoice_id) if row.with_pdf else None
        if row.with_pdf and pdf is None and self.adm.missing_pdf == "wait":
            raise InvoicePending("waiting for the invoice PDF in Qics (missing_pdf: wait)")
        log.info("invoice %s: the earlier booking is not in King; sending it again", booking.fact)
        self._post(claim, S.BOOKING_SENT, booking, pdf, report)
        return True

    # -- helpers --------------------------------------------------------------------------------

    def _move(self, claim: Claim, expected: ExportState, to: ExportState, **values) -> None:
        if not self.ledger.move(claim, expected, to, **values):
            raise ClaimLost(f"invoice {claim.invoice_id}: {expected} -> {to} refused: no longer ours")

    def _renew(self, claim: Claim) -> None:
        if not self.ledger.renew(claim):
            raise ClaimLost(f"invoice {claim.invoice_id}: claim (epoch {claim.epoch}) taken over")

    def _dry_run(self, report: ExportReport, snapshots: list[dict] | None, numbers=None) -> ExportReport:
        if snapshots is None:
            snapshots = self.select_from_qics(dry_run=True, report=report, numbers=numbers)
        open_rows = {row.invoice_id: row for row in self.ledger.rows((S.SELECTED.value,))}
        for snapshot in snapshots:
            open_rows.pop(int(snapshot["InvoiceHeaderId"]), None)
        snapshots = snapshots + [json.loads(r.invoice_json) for r in open_rows.values() if r.invoice_json]
        if numbers is not None:  # on demand: only the invoices named
            snapshots = [s for s in snapshots if str(s.get("InvoiceNumber") or "").strip() in numbers]
        report.worked_on += len(snapshots)
        refs = king_refs(self.king, snapshots) if snapshots else None
        for snapshot in snapshots:
            number = str(snapshot.get("InvoiceNumber") or snapshot["InvoiceHeaderId"]).strip()
            try:
                booking = self._build(snapshot, refs)
            except InvoiceError as exc:
                report.fail(number, exc.reason)
                continue
            log.info("dry run: would book %s: %s", number, booking.to_json())
            report.would_book.append({"invoice": number, "rows": json.loads(booking.to_json())})
        self._log(report)
        return report

    def _log(self, report: ExportReport) -> None:
        log.info("%s invoice export: %s", self.adm.id, report.sentence())
        for number, reason in sorted(report.waiting.items()):
            log.info("  waiting %s: %s", number, reason)
        for number, reason in sorted(report.failures.items()):
            log.warning("  failed %s: %s", number, reason)
