"""The generic mapping engine: include/mappings/<entity>.yaml turns a King DataFrame into Qics records.

One YAML per entity says which King table and key it reads, which Qics entity set it writes, and,
per Qics field, where the value comes from: a King field (``source``) with optional named
``transform``s, a ``constant``, a setting of the administration (``from_config``), the Qics id of
an already-synced record (``lookup``), a King-side ``join`` with another table, or a documented
``rule``. Adding a Qics field is a YAML change only. docs/mapping.md describes the format.

    mapping = load_mapping("customers")
    result = mapping.apply(king_df, administration=adm, lookups={"vat_codes": {"1": 17}, ...})
    result.records   # DataFrame indexed by the King key (text), one column per Qics field
    result.errors    # King key -> reason, for the records that cannot be mapped (not in .records)

Everything is column-wise (pandas); values come out JSON-ready: str, int, bool, Decimal or None.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from king_qics import transforms as tf

log = logging.getLogger(__name__)

MAPPINGS_DIR = tf.INCLUDE_DIR / "mappings"
ENTITIES = (
    "vat_codes",
    "payment_conditions",
    "cost_centers",
    "items",
    "customers",
    "employees",
    "projects",
)
_KING_FIELD = re.compile(r"^[A-Z][A-Z0-9_]*$")
_VENDOR_EMPTY = "empty in vendor table"
_VENDOR_ABSENT = "not in vendor table"


class MappingError(ValueError):
    """A mapping YAML is invalid."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ViaSpec(_Spec):
    """Translate a code through another King table first: the key of the row whose ``on`` field
    holds the code (e.g. ART.BTW, a one-letter VAT code, -> the BTW row with that letter -> its NR)."""

    table: str
    on: str
    key: str = "NR"


class LookupSpec(_Spec):
    entity: str  # the synced entity whose Qics ids are looked up (vat_codes, customers, ...)
    from_: str = Field(alias="from")  # the King field holding that entity's King key
    # optional: a code not synced yet leaves the link empty and the record *pending* (synced, and
    # re-checked by every run until the link resolves) instead of failing the record.
    optional: bool = False
    via: ViaSpec | None = None  # the field holds a code of another table, translated first
    # the field holds a code translated by an administration setting (code -> King key); a code
    # the setting does not list goes through ``via`` when given, else leaves the link empty
    codes_from_config: str | None = Field(None, pattern=r"^[a-z_]+(\.[a-z_]+)*$")


class JoinSpec(_Spec):
    table: str  # the other King table (read in full by the caller, passed as extra_tables)
    on: str  # the field of this entity's table holding the other table's key
    key: str = "NR"  # the other table's key field
    field: str  # the field of the other table to take


_SOURCES = ("source", "constant", "from_config", "lookup", "rule", "join")


class ValueSpec(_Spec):
    """Where one value comes from: exactly one of the source kinds, then transforms, then fallback."""

    source: str | list[str] | None = None
    constant: Any = None
    from_config: str | None = None
    lookup: LookupSpec | None = None
    rule: str | None = None
    join: JoinSpec | None = None
    transform: list[str] = Field(default_factory=list)
    fallback: ValueSpec | None = None  # used where this value is empty

    @model_validator(mode="before")
    @classmethod
    def _transform_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("transform"), str):
            data = {**data, "transform": [data["transform"]]}
        return data

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ValueSpec:
        given = [name for name in _SOURCES if name in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_SOURCES)} (got {', '.join(given) or 'none'})")
        if self.rule is not None and self.rule not in tf.RULES:
            raise ValueError(f"unknown rule {self.rule!r}; known: {', '.join(sorted(tf.RULES))}")
        if self.lookup is not None and self.lookup.entity not in ENTITIES:
            raise ValueError(f"lookup of unknown entity {self.lookup.entity!r}")
        if self.from_config is not None and not re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", self.from_config):
            raise ValueError(f"from_config {self.from_config!r} is not a dotted setting name")
        for position, name in enumerate(self.transform):
            base, _, arg = name.partition(":")
            if base not in tf.TRANSFORMS:
                raise ValueError(f"unknown transform {name!r}; known: {', '.join(sorted(tf.TRANSFORMS))}")
            if (base in tf.TRANSFORMS_WITH_ARGUMENT) != bool(arg) or (arg and not arg.isdigit()):
                raise ValueError(
                    f"transform {name!r}: " + ("give truncate:N" if arg == "" else "takes no argument")
                )
            if base in tf.MULTI_COLUMN_TRANSFORMS and position != 0:
                raise ValueError(f"transform {base!r} must come first")
        if isinstance(self.source, list) and (
            not self.transform or self.transform[0] not in tf.MULTI_COLUMN_TRANSFORMS
        ):
            raise ValueError("a list of source fields needs transform 'join' first")
        return self

    def king_fields(self) -> list[str]:
        """This entity's King fields this value reads (fallback included)."""
        fields: list[str] = []
        if self.source is not None:
            fields += [self.source] if isinstance(self.source, str) else list(self.source)
        if self.lookup is not None:
            fields.append(self.lookup.from_)
        if self.join is not None:
            fields.append(self.join.on)
        if self.rule is not None:
            fields += list(tf.RULES[self.rule][0])
        if self.fallback is not None:
            fields += self.fallback.king_fields()
        return fields

    def direct_king_fields(self) -> list[str]:
        """The King fields that feed this value directly (what the vendor table would name)."""
        if self.source is not None:
            return [self.source] if isinstance(self.source, str) else list(self.source)
        if self.lookup is not None:
            return [self.lookup.from_]
        return []


class FieldSpec(ValueSpec):
    """One Qics field: a ValueSpec plus documentation and checks."""

    required: bool = False  # empty -> the record fails ("Name: empty")
    vendor: (
        str  # the vendor table's King field, or "empty in vendor table: ...", or "not in vendor table: ..."
    )
    vendor_name: str | None = None  # the vendor table's Qics field name, where ours differs (with why)
    why: str | None = None  # our reasoning, wherever the rule is ours

    @model_validator(mode="after")
    def _vendor_note(self) -> FieldSpec:
        if _KING_FIELD.match(self.vendor):
            if self.vendor not in self.direct_king_fields():
                raise ValueError(f"vendor names King field {self.vendor}, but the value is not read from it")
        elif not self.vendor.startswith((_VENDOR_EMPTY, _VENDOR_ABSENT)):
            raise ValueError(
                f"vendor must be a King field, '{_VENDOR_EMPTY}: ...' or '{_VENDOR_ABSENT}: ...'"
            )
        elif not self.why:
            raise ValueError("a field the vendor table leaves empty (or lacks) needs a 'why'")
        if self.vendor_name and not self.why:
            raise ValueError("a field renamed from the vendor table needs a 'why'")
        return self

    @property
    def vendor_king_field(self) -> str | None:
        return self.vendor if _KING_FIELD.match(self.vendor) else None

    @property
    def in_vendor_table(self) -> bool:
        return not self.vendor.startswith(_VENDOR_ABSENT)


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


class EntityMapping(_Spec):
    """One include/mappings/<entity>.yaml."""

    entity: str
    description: str
    king_table: str
    king_table_setting: str | None = None  # an Administration attribute naming the table instead
    king_key: str
    qics_entity: str
    qics_id_field: str  # the Qics primary key (numeric id) of the entity set
    qics_key: str  # the Qics field that holds the King key (the code)
    qics_natural_key: list[str]  # the fields identifying a record in Qics (code + company)
    vendor_entity: str | None = None  # the vendor table's names for entity and table, when it has them
    vendor_table: str | None = None
    vendor_note: str | None = None
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _consistent(self) -> EntityMapping:
        if self.qics_key not in self.fields:
            raise ValueError(f"qics_key {self.qics_key} is not one of the fields")
        if self.fields[self.qics_key].source != self.king_key:
            raise ValueError(f"qics_key {self.qics_key} must have source: {self.king_key} (the King key)")
        unknown = [name for name in self.qics_natural_key if name not in self.fields]
        if unknown:
            raise ValueError(f"qics_natural_key names fields that are not mapped: {unknown}")
        if (self.vendor_entity is None) != (self.vendor_table is None):
            raise ValueError("give both vendor_entity and vendor_table, or neither")
        return self

    # -- what the caller needs to know --------------------------------------------------------

    @property
    def king_fields(self) -> list[str]:
        """The King fields to read from king_table (key first, each once, in mapping order)."""
        fields = [self.king_key]
        for spec in self.fields.values():
            fields += spec.king_fields()
        return list(dict.fromkeys(fields))

    @property
    def lookups(self) -> list[str]:
        """The synced entities whose King key -> Qics id maps ``apply`` needs."""
        return list(dict.fromkeys(_walk(self, lambda spec: spec.lookup.entity if spec.lookup else None)))

    @property
    def extra_tables(self) -> dict[str, list[str]]:
        """Other King tables ``apply`` needs (read in full), with the fields to read."""
        tables: dict[str, list[str]] = {}
        for join in _walk(self, lambda spec: spec.join):
            tables.setdefault(join.table, [])
            tables[join.table] = list(dict.fromkeys([*tables[join.table], join.key, join.field]))
        for via in _walk(self, lambda spec: spec.lookup.via if spec.lookup else None):
            tables[via.table] = list(dict.fromkeys([*tables.get(via.table, []), via.key, via.on]))
        return tables

    def king_table_for(self, administration: Any) -> str:
        """The King table to read for this administration (projects: its projects_table setting)."""
        if self.king_table_setting:
            return getattr(administration, self.king_table_setting, None) or self.king_table
        return self.king_table

    def company_filter(self, administration: Any) -> str:
        """OData $filter selecting this administration's records in Qics."""
        return f"CompanyId eq {int(tf.Context(pd.DataFrame(), administration).config('company_id'))}"

    def king_key_of(self, qics_record: dict) -> str | None:
        """The King key a Qics record belongs to (its code), as text; None when it has none."""
        value = qics_record.get(self.qics_key)
        if value is None or (isinstance(value, float) and value != value):
            return None
        key = tf.key_text(pd.Series([value], dtype=object)).iloc[0]
        return None if key is None else str(key)

    def natural_key(self, payload: dict) -> dict[str, Any]:
        """The fields that identify ``payload``'s record in Qics (e.g. CustomerCode + CompanyId)."""
        return {name: payload.get(name) for name in self.qics_natural_key}

    # -- mapping ------------------------------------------------------------------------------

    def apply(
        self,
        king_df: pd.DataFrame,
        *,
        administration: Any,
        lookups: dict[str, dict[str, int]] | None = None,
        extra_tables: dict[str, pd.DataFrame] | None = None,
        today: date | None = None,
    ) -> MappingResult:
        """Map King rows to Qics records. ``lookups``: per entity, King key (text) -> Qics id."""
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
        keys = tf.key_text(frame[self.king_key])
        errors: dict[str, str] = {}
        for position in keys.index[keys.isna()]:
            errors[f"(row {position + 1} without {self.king_key})"] = f"King {self.king_key} is empty"
        keep = keys.notna() & ~keys.duplicated(keep="last")  # a key read twice: the last read wins
        frame, keys = frame[keep].reset_index(drop=True), keys[keep].reset_index(drop=True)

        ctx = tf.Context(
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
                empty = tf.missing(values)
                if problems is not None:
                    empty &= problems.isna()
                what = f" (King {'+'.join(spec.king_fields())})" if spec.king_fields() else ""
                problems = tf.combine_errors(problems, tf._errors_where(empty, f"empty{what}"))
            columns[name] = tf.finalize(values)
            if problems is not None:
                field_errors[name] = problems
            field_warnings += [(name, messages) for _, messages in ctx.warnings[raised:]]

        records = pd.DataFrame(columns, index=frame.index)
        records.index = pd.Index(keys.astype(str).to_numpy(dtype=object), name=self.king_key)
        if field_errors:
            problems = pd.DataFrame(
                {
                    name: tf.keep(name + ": " + series.astype(str), series.notna())
                    for name, series in field_errors.items()
                }
            )
            failed = problems.notna().any(axis=1)
            for position in problems.index[failed]:
                reasons = [
                    reason for reason in problems.loc[position] if reason is not None and reason == reason
                ]
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


def _walk(mapping: EntityMapping, pick) -> list:
    found = []
    for spec in mapping.fields.values():
        current: ValueSpec | None = spec
        while current is not None:
            value = pick(current)
            if value is not None:
                found.append(value)
            current = current.fallback
    return found


def _lookup(lookup: LookupSpec, ctx: tf.Context) -> tf.Result:
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
    return tf.finalize(ids), tf.combine_errors(problems, tf._errors_where(unresolved, messages))


def _translated(lookup: LookupSpec, ctx: tf.Context) -> tf.Result:
    """The lookup's King keys: the field's codes as they are, or translated: by the administration
    setting ``codes_from_config`` for the codes it lists, the others ``via`` another King table."""
    codes = tf.key_text(ctx.frame[lookup.from_])
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
        for code, key in zip(tf.key_text(other[via.on]), tf.key_text(other[via.key]), strict=True):
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
    return keys, tf._errors_where(wrong, messages)


def _evaluate(spec: ValueSpec, ctx: tf.Context) -> tf.Result:
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
        other_keys = tf.key_text(other[join.key]) if len(other) else pd.Series([], dtype=object)
        other_values = other[join.field] if len(other) else pd.Series([], dtype=object)
        table = pd.Series(other_values.to_numpy(), index=other_keys.to_numpy(), dtype=object)
        table = table[table.index.notna() & ~table.index.duplicated(keep="last")]
        values = tf.key_text(ctx.frame[join.on]).map(table)
    else:
        values, errors = tf.RULES[spec.rule][1](ctx)

    for name in spec.transform:
        base, _, arg = name.partition(":")
        values, problems = tf.TRANSFORMS[base](values, ctx, arg or None)
        errors = tf.combine_errors(errors, problems)
    if isinstance(values, pd.DataFrame):  # pragma: no cover - rejected at load (a list source needs join)
        raise MappingError("a list source needs transform 'join'")

    if spec.fallback is not None:
        empty = tf.missing(values)
        if errors is not None:
            empty &= errors.isna()
        if empty.any():
            fallback, fallback_errors = _evaluate(spec.fallback, ctx)
            values = values.astype(object).where(~empty, fallback)
            if fallback_errors is not None:
                errors = tf.combine_errors(errors, tf.keep(fallback_errors, empty))
    return values, errors


# -- loading ----------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. (YAML 1.1 would read a key `on:` or a value `NO` as a bool.)"""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_mapping(entity_name: str, mappings_dir: str | Path | None = None) -> EntityMapping:
    """Read and validate include/mappings/<entity_name>.yaml (cached per file)."""
    path = Path(mappings_dir or MAPPINGS_DIR) / f"{entity_name}.yaml"
    return _load(path.resolve(), path.stat().st_mtime_ns if path.exists() else 0)


@cache
def _load(path: Path, _mtime: int) -> EntityMapping:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader)
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc.strerror or exc}") from exc
    try:
        mapping = EntityMapping.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise MappingError(f"invalid mapping {path.name}: {details}") from exc
    if mapping.entity != path.stem:
        raise MappingError(f"invalid mapping {path.name}: entity {mapping.entity!r} must match the file name")
    return mapping


def load_all(mappings_dir: str | Path | None = None) -> dict[str, EntityMapping]:
    return {name: load_mapping(name, mappings_dir) for name in ENTITIES}


# -- hashing ----------------------------------------------------------------------------------


def canonical_value(value: Any) -> Any:
    """One JSON representation per value: numbers as normalised decimal text, dates ISO, None for NaN."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)).normalize()
        return str(number.quantize(Decimal(1)) if number == number.to_integral_value() else number)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return canonical_value(value.item())
    return str(value)


def record_hash(row: dict | pd.Series) -> str:
    """Stable sha256 of a mapped record (field order, int vs Decimal vs '21.0' do not matter)."""
    items = row.items()
    canonical = {str(name): canonical_value(value) for name, value in items}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_hashes(records: pd.DataFrame) -> pd.Series:
    """record_hash of every row, indexed like ``records``."""
    names = list(records.columns)
    return pd.Series(
        [
            record_hash(dict(zip(names, row, strict=True)))
            for row in records.itertuples(index=False, name=None)
        ],
        index=records.index,
        dtype=object,
    )
