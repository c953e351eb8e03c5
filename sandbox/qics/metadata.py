"""``GET /api/V3/odata/$metadata``: the CSDL (OData v4 XML) of the entity sets and enum types as the
current wire profile serves them. Shape: standard CSDL 4.0 as ASP.NET OData writes it (one schema
with the entity and enum types in the models' namespace, one with the container): an assumption,
since Qics's own $metadata was never captured (research notes B.6: "read it from $metadata")."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from sandbox.qics.profile import WireProfile
from sandbox.qics.schema import ENUMS, NAMESPACE

EDM_TYPES = {
    "id": "Edm.Int64",
    "dec": "Edm.Decimal",
    "int": "Edm.Int32",
    "bool": "Edm.Boolean",
    "str": "Edm.String",
    "date": "Edm.Date",
    "datetime": "Edm.DateTimeOffset",
}


def csdl(profile: WireProfile) -> str:
    types, sets = [], []
    for served in profile.served_sets():
        view = profile.view(served)
        props = []
        for name, kind in view.fields.items():
            enum_type = view.enums.get(name)
            edm = f"{NAMESPACE}.{enum_type}" if enum_type else EDM_TYPES[kind]
            nullable = "" if name != view.key else ' Nullable="false"'
            props.append(f"<Property Name={quoteattr(name)} Type={quoteattr(edm)}{nullable}/>")
        types.append(
            f"<EntityType Name={quoteattr(served)}><Key><PropertyRef Name={quoteattr(view.key)}/></Key>"
            + "".join(props)
            + "</EntityType>"
        )
        sets.append(f"<EntitySet Name={quoteattr(served)} EntityType={quoteattr(f'{NAMESPACE}.{served}')}/>")
    for enum_type in ENUMS:
        members = "".join(
            f"<Member Name={quoteattr(m)} Value={quoteattr(str(i))}/>"
            for i, m in enumerate(profile.members(enum_type))
        )
        types.append(f"<EnumType Name={quoteattr(enum_type)}>{members}</EnumType>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
        "<edmx:DataServices>"
        f'<Schema Namespace="{NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        + "".join(types)
        + "</Schema>"
        '<Schema Namespace="Default" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        '<EntityContainer Name="Container">' + "".join(sets) + "</EntityContainer></Schema>"
        "</edmx:DataServices></edmx:Edmx>"
    )
