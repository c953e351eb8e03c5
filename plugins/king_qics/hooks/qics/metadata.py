"""The service's ``$metadata`` (CSDL XML) as a plain description: entity sets with their properties
and EDM types, enum types with their members. Parsed safely (no DTD, no entities, no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from king_qics.errors import ProtocolError
from king_qics.hooks.safe_xml import parse_xml_safely

_EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
_EDM_NAMESPACES = ("http://docs.oasis-open.org/odata/ns/edm",)


@dataclass(frozen=True)
class ServiceMetadata:
    # entity set -> property -> EDM type ("Edm.Int64", "<Namespace>.<EnumType>", ...)
    entity_sets: dict[str, dict[str, str]] = field(default_factory=dict)
    # qualified enum type name ("<Namespace>.<Type>") -> its members, in declared order
    enum_types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # entity set -> its key properties
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def enum_type_of(self, entity_set: str, prop: str) -> str | None:
        """The qualified enum type of a property, or None when it is not an enum."""
        kind = self.entity_sets.get(entity_set, {}).get(prop)
        return kind if kind in self.enum_types else None


def parse_metadata(content: bytes) -> ServiceMetadata:
    root = parse_xml_safely(content, "qics $metadata")
    if etree.QName(root).namespace != _EDMX or etree.QName(root).localname != "Edmx":
        raise ProtocolError("qics $metadata: not an OData CSDL document (no edmx:Edmx root)")
    entity_types: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {}
    enum_types: dict[str, tuple[str, ...]] = {}
    containers = []
    for schema in root.iter(*(f"{{{ns}}}Schema" for ns in _EDM_NAMESPACES)):
        edm = etree.QName(schema).namespace
        namespace = schema.get("Namespace", "")
        for entity in schema.findall(f"{{{edm}}}EntityType"):
            props = {p.get("Name"): p.get("Type") for p in entity.findall(f"{{{edm}}}Property")}
            keys = tuple(r.get("Name") for r in entity.findall(f"{{{edm}}}Key/{{{edm}}}PropertyRef"))
            entity_types[f"{namespace}.{entity.get('Name')}"] = (props, keys)
        for enum in schema.findall(f"{{{edm}}}EnumType"):
            members = tuple(m.get("Name") for m in enum.findall(f"{{{edm}}}Member"))
            enum_types[f"{namespace}.{enum.get('Name')}"] = members
        containers += [(edm, c) for c in schema.findall(f"{{{edm}}}EntityContainer")]
    sets, keys = {}, {}
    for edm, container in containers:
        for entity_set in container.findall(f"{{{edm}}}EntitySet"):
            props, key_props = entity_types.get(entity_set.get("EntityType", ""), ({}, ()))
            sets[entity_set.get("Name")] = dict(props)
            keys[entity_set.get("Name")] = key_props
    if not sets:
        raise ProtocolError("qics $metadata: no entity sets found")
    return ServiceMetadata(entity_sets=sets, enum_types=enum_types, keys=keys)
