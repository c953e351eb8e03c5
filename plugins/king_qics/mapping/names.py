"""What a mapping file may name: the transforms and rules (with the King fields each rule reads),
and the error a mapping raises. Pandas-free on purpose: loading a mapping (its spec is validated
against these names) does not import the mapping engine, so the idle gate (sync/gate.py), which
loads the mappings only for their tables, fields and keys, starts no pandas in its task process.
transforms.py implements exactly these (tests/unit/test_mapping_names.py)."""

from __future__ import annotations


class MappingError(ValueError):
    """A mapping YAML is invalid, or apply() lacks what the mapping needs."""


TRANSFORM_NAMES = frozenset(
    {
        "str",
        "strip",
        "upper",
        "lower",
        "truncate",  # truncate:N
        "int",
        "decimal",
        "percentage",
        "bool",
        "j_n_to_bool",
        "not_blocked",
        "country_code",
        "country_name",
        "email",
        "first_email",
        "date",
        "join",
    }
)
TRANSFORMS_WITH_ARGUMENT = frozenset({"truncate"})
MULTI_COLUMN_TRANSFORMS = frozenset({"join"})

# rule -> the King fields it reads
RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "reverse_charge": ("BTWPL", "OMSCHR"),
    "item_type": ("EENHVERK",),
    "allow_time_entry": ("EENHVERK",),
    "employee_active": ("BLOK", "DATUITDIENST"),
}
