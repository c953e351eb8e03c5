"""The mapping specs: one YAML per entity says which King table and key it reads, which Qics entity set
it writes, and, per Qics field, where the value comes from (a King field with named transforms, a
constant, a setting of the administration, the Qics id of an already-synced record, a King-side
join, or a documented rule). Validated with pydantic when loaded (mapping.loading); applied to a
King DataFrame by mapping.apply. docs/mapping.md describes the format."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from king_qics.catalog import ENTITY_NAMES
from king_qics.mapping import names

if TYPE_CHECKING:
    import pandas as pd

    from king_qics.mapping.apply import MappingResult

_KING_FIELD = re.compile(r"^[A-Z][A-Z0-9_]*$")
_VENDOR_EMPTY = "empty in vendor table"
_VENDOR_ABSENT = "not in vendor table"


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
        if self.rule is not None and self.rule not in names.RULE_FIELDS:
            raise ValueError(f"unknown rule {self.rule!r}; known: {', '.join(sorted(names.RULE_FIELDS))}")
        if self.lookup is not None and self.lookup.entity not in ENTITY_NAMES:
            raise ValueError(f"lookup of unknown entity {self.lookup.entity!r}")
        if self.from_config is not None and not re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", self.from_config):
            raise ValueError(f"from_config {self.from_config!r} is not a dotted setting name")
        for position, name in enumerate(self.transform):
            base, _, arg = name.partition(":")
            if base not in names.TRANSFORM_NAMES:
                known = ", ".join(sorted(names.TRANSFORM_NAMES))
                raise ValueError(f"unknown transform {name!r}; known: {known}")
            if (base in names.TRANSFORMS_WITH_ARGUMENT) != bool(arg) or (arg and not arg.isdigit()):
                raise ValueError(
                    f"transform {name!r}: " + ("give truncate:N" if arg == "" else "takes no argument")
                )
            if base in names.MULTI_COLUMN_TRANSFORMS and position != 0:
                raise ValueError(f"transform {base!r} must come first")
        if isinstance(self.source, list) and (
            not self.transform or self.transform[0] not in names.MULTI_COLUMN_TRANSFORMS
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
            fields += list(names.RULE_FIELDS[self.rule])
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


class EntityMapping(_Spec):
    """One mapping/data/<entity>.yaml (or its override in include/mappings/)."""

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
        import pandas as pd

        import king_qics.mapping.columns as col

        return f"CompanyId eq {int(col.Context(pd.DataFrame(), administration).config('company_id'))}"

    def king_key_of(self, qics_record: dict) -> str | None:
        """The King key a Qics record belongs to (its code), as text; None when it has none."""
        value = qics_record.get(self.qics_key)
        if value is None or (isinstance(value, float) and value != value):
            return None
        import pandas as pd

        import king_qics.mapping.columns as col

        key = col.key_text(pd.Series([value], dtype=object)).iloc[0]
        return None if key is None else str(key)

    def natural_key(self, payload: dict) -> dict[str, Any]:
        """The fields that identify ``payload``'s record in Qics (e.g. CustomerCode + CompanyId)."""
        return {name: payload.get(name) for name in self.qics_natural_key}

    # -- mapping ------------------------------------------------------------------------------

    def apply(self, king_df: pd.DataFrame, **options: Any) -> MappingResult:
        """Map King rows to Qics records (king_qics.mapping.apply.apply_mapping's options)."""
        from king_qics.mapping.apply import apply_mapping

        return apply_mapping(self, king_df, **options)


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
