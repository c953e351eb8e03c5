"""The mapping engine: a King DataFrame through an entity's mapping spec into Qics records, column by
column (pandas); values come out JSON-ready (str, int, bool, Decimal or None). A record with a
reason (an empty required field, a code that cannot be looked up, a transform that refuses its
value) is left out with that reason; the others are unaffected.

    mapping = load_mapping("customers")
    result = mapping.apply(king_df, administration=adm, lookups={"vat_codes": {"1": 17}, ...})
    result.records   # DataFrame indexed by the King key (text), one column per Qics field
    result.errors    # King key -> reason, for the records that cannot be mapped (not in .records)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd

import king_qics.mapping.columns as col
import king_qics.mapping.transforms as tf
from king_qics.mapping.names import MappingError
from king_qics.mapping.values import record_hashes

if TYPE_CHECKING:
    from king_qics.mapping.spec import EntityMapping, LookupSpec, ValueSpec

log = logging.getLogger(__name__)


@dataclass
class MappingResult:
    records: pd.DataFrame  # index: King key (text); columns: Qics fields; JSON-ready values
    errors: dict[str, str] = field(default_factory=dict)  # King key -> reason
    # King key -> what an optional lookup still waits for (the record itself is mapped)
    pending: dict[str, str] = field(default_factory=dict)
    # King key -> why a mapped record may not be all King holds (logged as a warning by apply)
    warnings: dict[str, str] = field(default_factory=dict)

    def payloads(self) -> dict[str, dict[str, Any]]:
        """King key -> Qics record (dict), for callers that want plain dicts."""
        return {
            str(key): dict(zip(self.records.columns, row, strict=True))
            for key, row in zip(
                self.records.index, self.records.itertuples(index=False, name=None), strict=True
            )
        }

    def hashes(self) -> pd.Series:
        return record_hashes(self.records)


def apply_mapping(
    mapping: EntityMapping,
    king_df: pd.DataFrame,
    *,
    administration: Any,
    lookups: dict[str, dict[str, int]] | None = None,
    extra_tables: dict[str, pd.DataFrame] | None = None,
    today: date | None = None,
) -> MappingResult:
    """Map King rows to Qics records. ``lookups``: per entity, King key (text) -> Qics id."""
    self = mapping
    lookups = lookups or {}
    for name in self.lookups:
        if name not in lookups:
            raise MappingError(f"{self.entity}: apply() needs lookups[{name!r}] (King key -> Qics id)")
    extra_tables = extra_tables or {}
    for table in self.extra_tables:
        if table not in extra_tables:
            raise MappingError(f"{self.entity}: apply() needs extra_tables[{table!r}] (the King table)")

    frame = king_df.reset_index(drop=True)
    for name in self.king_fields:
        if name not in frame.columns:
            frame[name] = None
    keys = col.key_text(frame[self.king_key])
    errors: dict[str, str] = {}
    for position in keys.index[keys.isna()]:
        errors[f"(row {position + 1} without {self.king_key})"] = f"King {self.king_key} is empty"
    keep = keys.notna() & ~keys.duplicated(keep="last")  # a key read twice: the last read wins
    frame, keys = frame[keep].reset_index(drop=True), keys[keep].reset_index(drop=True)

    ctx = col.Context(
        frame, administration, lookups, extra_tables, today=today if today is not None else date.today()
    )
    columns: dict[str, pd.Series] = {}
    field_errors: dict[str, pd.Series] = {}
    field_pending: dict[str, pd.Series] = {}
    field_warnings: list[tuple[str, pd.Series]] = []
    for name, spec in self.fields.items():
        raised = len(ctx.warnings)
        if spec.lookup is not None and spec.lookup.optional:
            values, field_pending[name] = _lookup(spec.lookup, ctx)
            columns[name] = values
            continue
        values, problems = _evaluate(spec, ctx)
        if spec.required:
            empty = col.missing(values)
            if problems is not None:
                empty &= problems.isna()
            what = f" (King {'+'.join(spec.king_fields())})" if spec.king_fields() else ""
            problems = col.combine_errors(problems, col.errors_where(empty, f"empty{what}"))
        columns[name] = col.finalize(values)
        if problems is not None:
            field_errors[name] = problems
        field_warnings += [(name, messages) for _, messages in ctx.warnings[raised:]]

    records = pd.DataFrame(columns, index=frame.index)
    records.index = pd.Index(keys.astype(str).to_numpy(dtype=object), name=self.king_key)
    if field_errors:
        problems = pd.DataFrame(
            {
                name: col.keep(name + ": " + series.astype(str), series.notna())
                for name, series in field_errors.items()
            }
        )
        failed = problems.notna().any(axis=1)
        for position in problems.index[failed]:
            reasons = [reason for reason in problems.loc[position] if reason is not None and reason == reason]
            errors[str(keys.iloc[position])] = "; ".join(reasons)
        records = records[~failed.to_numpy()]
    pending: dict[str, str] = {}
    for name, notes in field_pending.items():
        if notes is None:
            continue
        notes = notes[notes.notna()]
        for position, note in notes.items():
            key = str(keys.iloc[position])
            if key not in errors:
                pending[key] = "; ".join(filter(None, (pending.get(key), f"{name}: {note}")))
    warnings = _warnings(field_warnings, keys, errors)
    for key, warning in warnings.items():
        log.warning("%s %s: %s", self.entity, key, warning)
    return MappingResult(records=records, errors=errors, pending=pending, warnings=warnings)


def _warnings(raised: list[tuple[str, pd.Series]], keys: pd.Series, errors: dict[str, str]) -> dict[str, str]:
    """King key -> the warnings of its mapped record, one line per message with the fields it hit."""
    by_key: dict[str, dict[str, list[str]]] = {}
    for name, messages in raised:
        for position, message in messages[messages.notna()].items():
            key = str(keys.iloc[position])
            if key not in errors:
                by_key.setdefault(key, {}).setdefault(str(message), []).append(name)
    return {
        key: "; ".join(f"{', '.join(fields)}: {message}" for message, fields in found.items())
        for key, found in by_key.items()
    }


def _lookup(lookup: LookupSpec, ctx: tf.Context) -> col.Result:
    """The Qics ids of the King codes in ``lookup.from_``, and a note for each unresolved code:
    why it has none when the lookup can tell (king_qics.lookups.SyncedIds: does not exist in King,
    or exists but its own sync failed), else that it is not synced (yet)."""
    codes, problems = _translated(lookup, ctx)
    table = ctx.lookups[lookup.entity]
    ids = codes.map(table).astype("Int64")
    unresolved = codes.notna() & ids.isna()
    explain = getattr(table, "why_missing", None)
    if explain is None or not unresolved.any():
        messages = (
            f"King {lookup.from_} " + codes.astype(str) + f" is not synced to Qics ({lookup.entity}) (yet)"
        )
    else:
        reasons = {code: explain(lookup.from_, code) for code in set(codes[unresolved])}
        messages = codes.map(reasons)
    return col.finalize(ids), col.combine_errors(problems, col.errors_where(unresolved, messages))


def _translated(lookup: LookupSpec, ctx: tf.Context) -> col.Result:
    """The lookup's King keys: the field's codes as they are, or translated: by the administration
    setting ``codes_from_config`` for the codes it lists, the others ``via`` another King table."""
    codes = col.key_text(ctx.frame[lookup.from_])
    configured = {}
    if lookup.codes_from_config is not None:
        setting = ctx.config(lookup.codes_from_config) or {}
        configured = {str(code): str(key) for code, key in setting.items()}
        if lookup.via is None:
            return codes.map(configured), None
    if lookup.via is None:
        return codes, None
    via = lookup.via
    other = ctx.extra_tables[via.table]
    holders: dict[str, list[str]] = {}
    if len(other):
        for code, key in zip(col.key_text(other[via.on]), col.key_text(other[via.key]), strict=True):
            if code is not None and key is not None:
                holders.setdefault(code, []).append(key)
    keys = codes.map(lambda code: holders[code][0] if code in holders and len(holders[code]) == 1 else None)
    listed = codes.isin(list(configured))
    keys = keys.where(~listed, codes.map(configured))
    wrong = codes.notna() & keys.isna()
    setting = (
        f"; name its {via.table}.{via.key} in {lookup.codes_from_config}" if lookup.codes_from_config else ""
    )
    messages = codes.map(
        lambda code: (
            f"King {lookup.from_} {code!r} matches "
            + (
                f"{len(holders[code])} {via.table} rows ({via.on}): which one is meant is unknown{setting}"
                if code in holders
                else f"no {via.table} row ({via.on} {code!r}){setting}"
            )
        )
    )
    return keys, col.errors_where(wrong, messages)


def _evaluate(spec: ValueSpec, ctx: tf.Context) -> col.Result:
    index = ctx.frame.index
    errors: pd.Series | None = None
    if spec.source is not None:
        values: Any = ctx.frame[spec.source] if isinstance(spec.source, str) else ctx.frame[list(spec.source)]
    elif "constant" in spec.model_fields_set:
        values = pd.Series([spec.constant] * len(index), index=index, dtype=object)
    elif spec.from_config is not None:
        values = pd.Series([ctx.config(spec.from_config)] * len(index), index=index, dtype=object)
    elif spec.lookup is not None:
        values, errors = _lookup(spec.lookup, ctx)
    elif spec.join is not None:
        join = spec.join
        other = ctx.extra_tables[join.table]
        other_keys = col.key_text(other[join.key]) if len(other) else pd.Series([], dtype=object)
        other_values = other[join.field] if len(other) else pd.Series([], dtype=object)
        table = pd.Series(other_values.to_numpy(), index=other_keys.to_numpy(), dtype=object)
        table = table[table.index.notna() & ~table.index.duplicated(keep="last")]
        values = col.key_text(ctx.frame[join.on]).map(table)
    else:
        values, errors = tf.RULES[spec.rule][1](ctx)

    for name in spec.transform:
        base, _, arg = name.partition(":")
        values, problems = tf.TRANSFORMS[base](values, ctx, arg or None)
        errors = col.combine_errors(errors, problems)
    if isinstance(values, pd.DataFrame):  # pragma: no cover - rejected at load (a list source needs join)
        raise MappingError("a list source needs transform 'join'")

    if spec.fallback is not None:
        empty = col.missing(values)
        if errors is not None:
            empty &= errors.isna()
        if empty.any():
            fallback, fallback_errors = _evaluate(spec.fallback, ctx)
            values = values.astype(object).where(~empty, fallback)
            if fallback_errors is not None:
                errors = col.combine_errors(errors, col.keep(fallback_errors, empty))
    return values, errors
