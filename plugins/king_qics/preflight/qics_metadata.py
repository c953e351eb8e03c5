"""The preflight's checks of Qics's ``$metadata`` against what the sync sends and reads: every entity
set and property (the mappings' fields, the invoice header and lines, EntityState), the enum types
and members the wire profile names, and which properties are date-times (how a date is written in
$filter). One row per entity set, one per profile value; read-only."""

from __future__ import annotations

from king_qics.catalog import ENTITY_NAMES
from king_qics.errors import KingQicsError
from king_qics.hooks.qics.odata import DATETIME_FIELDS, ENUM_FIELDS
from king_qics.mapping import load_mapping
from king_qics.preflight import Check, differs, ok, unknown

Q = "Qics"
DATETIME = "Edm.DateTimeOffset"
# The properties of EntityState the export writes (and looks its marks up by).
ENTITY_STATE_FIELDS = (
    "CompanyId",
    "EntityType",
    "EntityId",
    "DataSource",
    "DataSourceKey",
    "DataSourceDate",
    "IsError",
    "Message",
)


def metadata_checks(adm, qics) -> list[Check]:
    try:
        metadata = qics.metadata()
    except KingQicsError as exc:
        return [
            unknown(
                Q,
                "$metadata",
                f"not served ({exc}): the entity sets, properties and enums the profile names are not "
                "checked here, only by the queries below",
                "Qics rows 40-41",
            )
        ]
    used = used_properties(adm, qics.profile)
    checks = [ok(Q, "$metadata", f"{len(metadata.entity_sets)} entity sets", "Qics row 40", blocking=False)]
    checks += [_entity_set(metadata, name, props) for name, props in used.items()]
    checks += _enum_values(adm, metadata, qics.profile)
    checks.append(_registry(metadata, used, qics.profile))
    return checks


def used_properties(adm, profile) -> dict[str, list[str]]:
    """Entity set -> the properties the sync reads or writes there."""
    from king_qics.sync.invoices.selection import CUSTOMER_FIELDS, INVOICE_FIELDS

    used: dict[str, list[str]] = {}
    for entity in ENTITY_NAMES:
        mapping = load_mapping(entity)
        fields = [mapping.qics_id_field, mapping.qics_key, *mapping.qics_natural_key, *mapping.fields]
        used.setdefault(mapping.qics_entity, []).extend(fields)
    used.setdefault("CustomerCompany", []).extend(CUSTOMER_FIELDS)
    used["Invoice"] = list(INVOICE_FIELDS)
    used[profile.invoice_line_set] = list(profile.line_fields().values())
    used["EntityState"] = list(ENTITY_STATE_FIELDS)
    return {name: list(dict.fromkeys(props)) for name, props in used.items()}


def _entity_set(metadata, name: str, props: list[str]) -> Check:
    verifies = "the mappings' Qics fields; invoice_line_set, line_*_field; rows 27-33"
    have = metadata.entity_sets.get(name)
    if have is None:
        return differs(Q, f"set {name}", f"an entity set {name} vs none in $metadata", verifies)
    missing = [prop for prop in props if prop not in have]
    if missing:
        return differs(Q, f"set {name}", f"{', '.join(missing)} vs not properties of {name}", verifies)
    return ok(Q, f"set {name}", f"all {len(props)} properties the sync uses", verifies)


def _enum_values(adm, metadata, profile) -> list[Check]:
    """Each enum value the profile or the config sends: its type (in the profile's namespace) has it."""
    values = [
        ("Invoice", "InvoiceHeaderState", profile.invoice_processed_state, "invoice_processed_state"),
        ("Invoice", "InvoiceHeaderType", profile.credit_note_type, "credit_note_type"),
        ("EntityState", "EntityType", profile.invoice_entity_type, "invoice_entity_type"),
        ("ItemCompany", "ItemType", adm.defaults.item_type, "defaults.item_type (config)"),
        (
            "PaymentCondition",
            "PaymentConditionType",
            adm.defaults.payment_condition_type,
            "defaults.payment_condition_type (config)",
        ),
    ]
    checks = []
    for entity_set, prop, value, setting in values:
        expected = f"{profile.enum_namespace}.{ENUM_FIELDS[prop]}"
        kind = metadata.entity_sets.get(entity_set, {}).get(prop)
        name = f"enum {prop}"
        if kind is None:
            checks.append(unknown(Q, name, f"{entity_set}.{prop} not in $metadata", setting))
        elif kind != expected:
            checks.append(differs(Q, name, f"type {expected} vs {kind}", f"enum_namespace; {setting}"))
        elif value not in metadata.enum_types.get(kind, ()):
            members = ", ".join(metadata.enum_types.get(kind, ())) or "none"
            checks.append(differs(Q, name, f"member {value} vs {members}", setting))
        else:
            checks.append(ok(Q, name, f"{kind}'{value}'", f"enum_namespace; {setting}"))
    return checks


def _registry(metadata, used: dict[str, list[str]], profile) -> Check:
    """The hook writes a $filter value by what it knows of the property (hooks/qics/odata.py): an enum
    literal for ENUM_FIELDS, a date-time for DATETIME_FIELDS. Every used property must agree."""
    verifies = "ENUM_FIELDS, DATETIME_FIELDS in hooks/qics/odata.py; rows 15, 18"
    wrong = []
    for entity_set, props in used.items():
        have = metadata.entity_sets.get(entity_set, {})
        for prop in props:
            kind = have.get(prop)
            if kind is None:
                continue  # reported by the set's own row
            is_enum = kind in metadata.enum_types
            if is_enum != (prop in ENUM_FIELDS):
                wrong.append(f"{entity_set}.{prop} is {kind}")
            elif (kind == DATETIME) != (prop in DATETIME_FIELDS) and kind in (DATETIME, "Edm.Date"):
                wrong.append(f"{entity_set}.{prop} is {kind}")
    if wrong:
        return differs(Q, "property types", f"our registry vs {'; '.join(wrong)}", verifies)
    style = "date-times" if profile.date_literal_style == "datetime" else "bare dates"
    return ok(Q, "property types", f"enums and date-times as the hook writes them ({style})", verifies)
