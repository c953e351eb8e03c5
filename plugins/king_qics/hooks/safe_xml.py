"""Parsing an API's XML answer safely: the one parser both hooks use (King's SOAP, Qics's
$metadata)."""

from __future__ import annotations

from lxml import etree

from king_qics.errors import ProtocolError


def parse_xml_safely(data: bytes | str, what: str) -> etree._Element:
    """Parse an API's XML answer with no DTD, no entities and no network; ``what`` names the answer
    in the ProtocolError of a malformed one or one that carries a DTD."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, remove_comments=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ProtocolError(f"{what}: the answer is not well-formed XML ({exc.msg})") from None
    if root.getroottree().docinfo.doctype:
        raise ProtocolError(f"{what}: the answer carries a DTD; refused")
    return root
