"""Master data King -> Qics for one entity: extract -> map -> diff -> load -> report.

- extract: the King table, incrementally (MUTDATE_VA from the watermark, minus an overlap) or in
  full (full_refresh, first sync, and the first run of each day), plus the records on the failing
  list re-read by key even when King's change date did not move;
- map: the entity's mapping YAML (king_qics.mapping), lookups resolved against the state store;
- diff: hash of the mapped record vs the hash last written (full_refresh: field by field against
  what Qics really holds, which repairs records changed by hand in Qics);
- load: POST new, PUT changed (merged over the current Qics record, so unmapped fields survive),
  up to the administration's ``qics_write_concurrency`` at once (sync.record_writes); the successes
  are stored in batches (state.SavedBatch: a success not stored yet when the task dies is matched
  in Qics by its King key on the next run, never created twice); a rejected record is stored on
  the failing list at once;
- report: counts, and a table of key + reason for every record that failed.

On demand (``keys``): exactly the records named, read from King by key and compared with what
Qics holds now (no hash, no watermark is trusted or moved for them), each reported as created,
updated, unchanged, failed (with its reason) or not found in King.

Nothing is ever deleted in Qics. A dry run reads and diffs, logs what it would write per record
and field, and changes nothing: no Qics write, no watermark, no hash, no failing-list change.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd
import pendulum

from king_qics.catalog import TIMEZONE
from king_qics.errors import RecordValidationError
from king_qics.lookups import synced_ids
from king_qics.mapping import load_mapping, record_hash
from king_qics.state import (
    Acceptances,
    SavedBatch,
    StateStore,
    SyncedRecords,
    Watermarks,
    add_run_report,
    utcnow,
)
from king_qics.sync.diff import (
    Action,
    bookkeeping_due,
    canonical_json,
    decide,
    describe_differences,
    json_ready,
    stored_values,
)
from king_qics.sync.due import WATERMARK_OVERLAP, full_read_reason
from king_qics.sync.entity_run import EntityReport, EntityRun
from king_qics.sync.record_writes import RecordWrites

log = logging.getLogger(__name__)


class MasterDataSync:
    """Syncs master-data entities of one administration from King to Qics."""

    def __init__(self, administration, king, qics, store: StateStore, *, run_id: str | None = None):
        self.adm = administration
        self.king = king
        self.qics = qics
        self.store = store
        self.run_id = run_id
        self.watermarks = Watermarks(store, administration.id)
        self.unreadable: dict[str, str] = {}

    # -- the flow ------------------------------------------------------------------------------

    def run(
        self,
        entity: str,
        *,
        full_refresh: bool = False,
        dry_run: bool = False,
        pending_only: bool = False,
        retry_rejected: bool = False,
        report_as: str | None = None,
        keys: list[str] | None = None,
    ) -> EntityReport:
        """Sync one entity. ``pending_only``: only the records whose optional links wait (used right
        after the entity they wait for was synced); no watermark moves. A record Qics rejected is
        sent again only when its mapped data changed, or with ``retry_rejected`` (a cleared task)
        or ``full_refresh``. The run report is kept under ``report_as`` (the task's id, where one
        entity is synced by two tasks), else the entity."""
        started = utcnow()
        mapping = load_mapping(entity)
        records = SyncedRecords(self.store, self.adm.id, entity)
        report = EntityReport(self.adm.id, entity, dry_run=dry_run)

        self.unreadable: dict[str, str] = {}
        self.acceptances = Acceptances(self.store, self.adm.id)
        self.accepted = self.acceptances.of(entity)
        known = records.all()
        retry = {key for key, row in known.items() if row.pending or (row.last_error and not pending_only)}
        wanted = None if keys is None else {str(key).strip() for key in keys if str(key).strip()}
        if wanted is not None:
            report.outcomes = {}
            retry = wanted & {key for key, row in known.items() if row.pending or row.last_error}
            king_df = self._read_keys(mapping, wanted)
        elif pending_only:
            king_df = self._read_keys(mapping, retry)
        else:
            king_df, report.full_read = self._extract(mapping, retry, full_refresh, started)
        report.read = len(king_df)
        if not dry_run:  # every record to retry was read (in full or by key): the rest is gone
            self._forget_removed(mapping, records, retry - set(self.unreadable), king_df)
        for key, reason in sorted(self.unreadable.items()):
            self._fail(report, records, key, reason, dry_run)

        mapped = self.map(mapping, king_df)
        for key, reason in mapped.errors.items():
            self._fail(report, records, str(key), reason, dry_run)

        if wanted is not None:  # compared with Qics itself, whatever the hashes say
            qics_now, full_refresh = self._qics_records_of(mapping, mapped, known), True
        else:
            qics_now = self._qics_records(mapping, mapped, known, full_refresh)
        run = EntityRun(
            mapping,
            records,
            report,
            qics_now,
            full_refresh,
            dry_run,
            retry_rejected=retry_rejected or full_refresh,
            saves=SavedBatch(records),
            writes=RecordWrites(1 if dry_run else self.qics.in_flight.maximum, (RecordValidationError,)),
        )
        records_by_key = zip(mapped.records.index, mapped.records.to_dict("records"), strict=True)
        try:
            for key, row in records_by_key:  # plain dicts: a Series per row (iterrows) cost more than the row
                key = str(key)
                pending = mapped.pending.get(key)
                report.pending += pending is not None
                if pending is not None:
                    report.waiting[key] = pending
                payload = {name: json_ready(value) for name, value in row.items()}
                self._sync_one(run, key, payload, pending, known.get(key))
            run.writes.finish()
        finally:  # also when the load ends with an error: what Qics accepted is stored
            run.writes.close()
            run.saves.flush()
        if run.writes.workers > 1 and report.new + report.changed:
            log.info("%s %s: Qics writes: %s", self.adm.id, entity, self.qics.in_flight.describe())
        for key, pending in mapped.pending.items():  # after the writes: their outcomes are all told
            if report.outcomes and key in report.outcomes:
                report.outcomes[key] += f"; a link waits: {pending}"
        read = set(king_df[mapping.king_key].astype(str)) if len(king_df) else set()
        for key in sorted((wanted or set()) - set(report.outcomes or {})):
            listed = " (taken off the failing list)" if key in retry and not dry_run else ""
            missing = f"not found in King{listed}"
            report.tell(key, "read from King, left out by the mapping" if key in read else missing)

        if not dry_run:
            if not pending_only and wanted is None:
                self.watermarks.advance(mapping.king_table_for(self.adm), started, report.full_read)
            add_run_report(
                self.store,
                administration=self.adm.id,
                entity=report_as or entity,
                run_id=self.run_id,
                started_at=started,
                finished_at=utcnow(),
                **{k: v for k, v in report.counts().items() if k != "entity"},
            )
        log.info(
            "%s %s: read %d, new %d, changed %d, unchanged %d, failed %d, pending %d%s%s",
            self.adm.id,
            entity,
            report.read,
            report.new,
            report.changed,
            report.unchanged,
            report.failed,
            report.pending,
            " (full read)" if report.full_read else "",
            " (dry run: nothing written)" if dry_run else "",
        )
        return report

    def map(self, mapping, king_df):
        """King rows -> Qics records, lookups resolved against what the state store has synced."""
        lookups = {name: synced_ids(self.store, self.adm, name) for name in mapping.lookups}
        extra_tables = {
            table: self.king.read_table(table, fields) for table, fields in mapping.extra_tables.items()
        }
        return mapping.apply(king_df, administration=self.adm, lookups=lookups, extra_tables=extra_tables)

    def read_qics(self, mapping) -> dict[str, dict]:
        """This administration's Qics records of the mapping's entity, keyed by King key."""
        records = self.qics.iter_records(mapping.qics_entity, filter=mapping.company_filter(self.adm))
        return {key: record for record in records if (key := mapping.king_key_of(record)) is not None}

    def _extract(self, mapping, retry: set[str], full_refresh: bool, started: datetime):
        """The King records to look at: changed since the watermark plus the ones to retry, or all."""
        table, fields, key_field = mapping.king_table_for(self.adm), mapping.king_fields, mapping.king_key
        watermark = self.watermarks.get(table)
        reason = full_read_reason(watermark, started, full_refresh, len(retry))
        if reason:
            log.info("%s %s: reading every record of %s (%s)", self.adm.id, mapping.entity, table, reason)
            return self._read(table, fields), True
        since = pendulum.instance(watermark.read_until - WATERMARK_OVERLAP).in_timezone(TIMEZONE)
        changed = self._read(table, fields, changed_since=since.date())
        already = set(changed[key_field].astype(str)) if len(changed) else set()
        again = self._read_keys(mapping, retry - already)
        frames = [frame for frame in (changed, again) if len(frame)]
        return (pd.concat(frames, ignore_index=True) if frames else changed), False

    def _forget_removed(self, mapping, records, retried: set[str], king_df) -> None:
        """A failing or pending record that King no longer has leaves the lists (never Qics)."""
        found = set(king_df[mapping.king_key].astype(str)) if len(king_df) else set()
        for key in sorted(retried - found):
            log.info("%s %s %s: no longer in King; no longer retried", self.adm.id, mapping.entity, key)
            records.removed_in_king(key)

    def _read(self, table: str, fields, **query):
        """A King read in which a record King cannot serve fails alone (``self.unreadable``)."""
        frame, unreadable = self.king.read_table_isolated(table, fields, **query)
        self.unreadable.update(unreadable)
        return frame

    def _read_keys(self, mapping, keys: set[str]):
        """Re-read records by key, even when King's change date did not move (failing/pending ones)."""
        table, fields, key_field = mapping.king_table_for(self.adm), mapping.king_fields, mapping.king_key
        frames = [self._read(table, fields, where=[(key_field, "=", key)]) for key in sorted(keys)]
        frames = [frame for frame in frames if len(frame)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(fields))

    def _qics_records(self, mapping, mapped, known, full_refresh: bool) -> dict[str, dict] | None:
        """Qics's current records keyed by King key, when they are needed.

        Needed on full_refresh (compare everything) and when a record is new to the state store
        (first sync: an existing Qics record with the same code is matched, never duplicated).
        Steady state needs none: zero Qics reads.
        """
        not_in_qics_yet = [
            key
            for key in map(str, mapped.records.index)
            if known.get(key) is None or known[key].qics_id is None
        ]
        if not full_refresh and not not_in_qics_yet:
            return None
        return self.read_qics(mapping)

    def _qics_records_of(self, mapping, mapped, known) -> dict[str, dict]:
        """Qics's current records of the mapped keys: each by its Qics id, and one read of the
        entity when some key has none yet (it may exist in Qics with that code)."""
        keys = [str(key) for key in mapped.records.index]
        if any(known.get(key) is None or known[key].qics_id is None for key in keys):
            everything = self.read_qics(mapping)
            return {key: everything[key] for key in keys if key in everything}
        found = {key: self.qics.get(mapping.qics_entity, known[key].qics_id) for key in keys}
        return {key: record for key, record in found.items() if record is not None}

    def _sync_one(self, run: EntityRun, key: str, payload: dict, pending: str | None, stored) -> None:
        mapping, report = run.mapping, run.report
        digest = record_hash(payload)
        qics_id, current = self._in_qics(run, key, stored)
        action = decide(
            payload,
            digest,
            stored=stored,
            current=current,
            qics_id=qics_id,
            retry_rejected=run.retry_rejected,
        )
        if action is Action.STILL_REJECTED:
            report.failed += 1  # Qics said no to exactly this record
            report.failures[key] = (
                f"{stored.last_error} (not sent again: unchanged since; change it in King, or clear the task "
                "or run with full_refresh to send it again)"
            )
            report.tell(key, f"failed: {report.failures[key]}")
            return
        if action is Action.UNCHANGED:
            report.unchanged += 1
            report.tell(key, "unchanged (Qics holds it as mapped)")
            if not run.dry_run and bookkeeping_due(stored, digest, pending):
                run.saves.add(key, qics_id, digest, canonical_json(payload), pending)
            if not run.dry_run:
                self._synced(mapping.entity, key)
            return
        if run.dry_run:
            before = current if current is not None else stored_values(stored)
            log.info(
                "dry run: would %s %s %s: %s",
                "create" if action is Action.NEW else "update",
                mapping.qics_entity,
                key,
                "; ".join(describe_differences(payload, before or {})) or "(no field detail)",
            )
            setattr(report, action.value, getattr(report, action.value) + 1)
            report.tell(key, "would be created" if action is Action.NEW else "would be updated")
            return

        def done(saved_id, error) -> None:
            self._written(run, key, action, digest, payload, pending, saved_id, error)

        run.writes.submit(lambda: self._write(mapping, payload, qics_id, current), done)

    def _written(self, run: EntityRun, key, action, digest, payload, pending, qics_id, error) -> None:
        """A write's outcome, in the run's thread: the success stored, or the rejection listed."""
        if error is not None:
            reason = f"Qics rejected {run.mapping.qics_entity}: {error.message}"
            self._fail(run.report, run.records, key, reason, False, rejected_hash=digest)
            return
        run.saves.add(key, qics_id, digest, canonical_json(payload), pending)
        self._synced(run.mapping.entity, key)
        setattr(run.report, action.value, getattr(run.report, action.value) + 1)
        run.report.tell(key, f"{'created' if action is Action.NEW else 'updated'} (Qics id {qics_id})")

    def _in_qics(self, run: EntityRun, key: str, stored) -> tuple[int | None, dict | None]:
        """The record's Qics id and, when Qics was read, its current Qics record."""
        qics_id = stored.qics_id if stored is not None else None
        if run.qics_now is None or not (run.full_refresh or qics_id is None):
            return qics_id, None
        current = run.qics_now.get(key)
        if current is not None:
            return int(current[run.mapping.qics_id_field]), current
        if run.full_refresh and qics_id is not None:  # read in full, and Qics no longer has it
            log.info(
                "%s %s %s: gone from Qics (id %s); created again",
                self.adm.id,
                run.mapping.entity,
                key,
                qics_id,
            )
        return (None if run.full_refresh else qics_id), None

    def _write(self, mapping, payload: dict, qics_id: int | None, current: dict | None) -> int:
        """Create or update the record in Qics; its Qics id. An update is merged over the record
        Qics holds, so fields the mapping does not write survive."""
        base = None
        if qics_id is not None:
            base = current if current is not None else self.qics.get(mapping.qics_entity, qics_id)
        if base is None:  # new, or removed in Qics by hand: create it (again)
            saved = self.qics.create(mapping.qics_entity, payload, natural_key=mapping.natural_key(payload))
            return int(saved[mapping.qics_id_field])
        self.qics.update(mapping.qics_entity, qics_id, {**_writable(base), **payload})
        return qics_id

    def _synced(self, entity: str, key: str) -> None:
        if self.accepted.pop(key, None) is not None:  # it syncs now: its acceptance has ended
            self.acceptances.lift(entity, key)

    def _fail(self, report, records, key, reason, dry_run, rejected_hash: str | None = None) -> None:
        acceptance = self.accepted.get(key)
        if acceptance is not None and acceptance.reason == reason:  # the failure a person accepted
            report.accepted[key] = f"accepted as is ({acceptance.note}): {reason}"
            report.tell(key, f"failed, accepted as is: {reason}")
            return
        if acceptance is not None and not dry_run:  # it fails for another reason now: listed again
            self.accepted.pop(key)
            self.acceptances.lift(report.entity, key)
        report.failed += 1
        report.failures[key] = reason
        report.tell(key, f"failed: {reason}")
        if not dry_run:
            records.failed(key, reason, rejected_hash=rejected_hash)


def _writable(record: dict) -> dict:
    return {name: value for name, value in record.items() if not name.startswith("@odata")}
