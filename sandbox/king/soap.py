"""SOAP 1.1 / 1.2 envelopes as ASP.NET's ws1_xml.asmx speaks them: safe parsing, lxml building."""

from __future__ import annotations

from lxml import etree

NS = "https://cloudswitch.imuisonline.com/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CONTENT_TYPES = {SOAP11: "text/xml; charset=utf-8", SOAP12: "application/soap+xml; charset=utf-8"}
XS = "http://www.w3.org/2001/XMLSchema"
ARRAY_PARAMETERS = {"Primarykey"}  # ArrayOfString parameters (CreateJournaalpost's key, ByRef)


class SoapFault(Exception):
    """Answered as HTTP 500 with a SOAP Fault (client = the request is wrong, else server)."""

    def __init__(self, message: str, client: bool = True, version: str = SOAP12):
        super().__init__(message)
        self.message, self.client, self.version = message, client, version


def parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, remove_comments=True
    )


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse untrusted XML; no DTDs, no entities, no network."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    root = etree.fromstring(data, parser())
    if root.getroottree().docinfo.doctype:
        raise etree.XMLSyntaxError("DTD is prohibited", None, 0, 0)  # type: ignore[call-arg]
    return root


def _action_from_headers(headers) -> str | None:
    soap_action = headers.get("soapaction")
    if soap_action is not None:
        return soap_action.strip().strip('"')
    content_type = headers.get("content-type", "")
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "action":
            return value.strip().strip('"')
    return None


def read_request(body: bytes, headers) -> tuple[str, str, dict[str, str | etree._Element]]:
    """-> (soap version namespace, operation, {parameter: text}); raises SoapFault."""
    content_type = headers.get("content-type", "")
    version = SOAP12 if "soap+xml" in content_type else SOAP11
    try:
        envelope = parse_xml(body)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SoapFault(
            f"Server was unable to read request. ---> There is an error in XML document. ---> {exc}",
            version=version,
        ) from None
    if envelope.tag not in (f"{{{SOAP11}}}Envelope", f"{{{SOAP12}}}Envelope"):
        raise SoapFault(
            "Server was unable to read request: the root is not a SOAP Envelope.", version=version
        )
    version = etree.QName(envelope).namespace
    body_el = envelope.find(f"{{{version}}}Body")
    children = [child for child in body_el if isinstance(child.tag, str)] if body_el is not None else []
    if not children:
        raise SoapFault("Unable to handle request without a valid action parameter.", version=version)
    call = children[0]
    qname = etree.QName(call)
    action = _action_from_headers(headers)
    if qname.namespace != NS:
        raise SoapFault(
            f"Server did not recognize the value of HTTP Header SOAPAction: {action}.", version=version
        )
    if action not in (None, "") and action != NS + qname.localname:
        raise SoapFault(
            f"Server did not recognize the value of HTTP Header SOAPAction: {action}.", version=version
        )
    params: dict[str, str | etree._Element] = {}
    for child in call:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if len(child) and name not in ARRAY_PARAMETERS:
            # ws1_xml's parameters are strings: a dataset sent as nested XML instead of as text is
            # refused while the request is read (as ASP.NET's XmlSerializer does; a public client
            # noted "ws1_xml expects Selectie as a string"; the fault text is modelled on .NET's)
            raise SoapFault(
                "Server was unable to read request. ---> There is an error in XML document. ---> "
                f"Unexpected node type Element. ReadElementString method can only be called on elements "
                f"with simple or empty content ({name}).",
                version=version,
            )
        params[name] = child if len(child) else (child.text or "")
    return version, qname.localname, params


def response(
    version: str, operation: str, result: bool, outputs: list[tuple[str, object]], error: str
) -> bytes:
    """``<XxxResponse><XxxResult/>…outputs…<Foutmelding/></XxxResponse>`` in a SOAP envelope.

    An output value is a str (text), a list of str (ArrayOfString) or None (empty element).
    """
    envelope = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version, "xsi": _XSI, "xsd": _XSD})
    body = etree.SubElement(envelope, f"{{{version}}}Body")
    answer = etree.SubElement(body, f"{{{NS}}}{operation}Response", nsmap={None: NS})
    etree.SubElement(answer, f"{{{NS}}}{operation}Result").text = "true" if result else "false"
    for name, value in outputs:
        element = etree.SubElement(answer, f"{{{NS}}}{name}")
        if isinstance(value, list):
            for item in value:
                etree.SubElement(element, f"{{{NS}}}string").text = item
        elif value is not None:
            element.text = str(value)
    etree.SubElement(answer, f"{{{NS}}}Foutmelding").text = error or None
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def fault(fault_: SoapFault) -> bytes:
    version = fault_.version
    envelope = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version, "xsi": _XSI, "xsd": _XSD})
    body = etree.SubElement(envelope, f"{{{version}}}Body")
    element = etree.SubElement(body, f"{{{version}}}Fault")
    if version == SOAP11:
        etree.SubElement(element, "faultcode").text = "soap:Client" if fault_.client else "soap:Server"
        etree.SubElement(element, "faultstring").text = fault_.message
        etree.SubElement(element, "detail")
    else:
        code = etree.SubElement(element, f"{{{version}}}Code")
        value = etree.SubElement(code, f"{{{version}}}Value")
        value.text = "soap:Sender" if fault_.client else "soap:Receiver"
        reason = etree.SubElement(element, f"{{{version}}}Reason")
        text = etree.SubElement(reason, f"{{{version}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = fault_.message
        etree.SubElement(element, f"{{{version}}}Detail")
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSD = "http://www.w3.org/2001/XMLSchema"


def dataset_text(root: etree._Element) -> str:
    """A dataset (``<NewDataSet>``) as the text of a string parameter (lxml escapes it once more)."""
    return etree.tostring(root, encoding="unicode")


def parse_dataset(param: str | etree._Element | None, name: str) -> etree._Element:
    """A dataset parameter: XML text (CDATA or entity-escaped; nested XML is refused on reading)."""
    if param is None or not isinstance(param, str):
        raise ValueError(f"Parameter {name} ontbreekt")
    if not param.strip():
        raise ValueError(f"Parameter {name} is leeg")
    try:
        return parse_xml(param.strip())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ValueError(f"Parameter {name} bevat geen geldige XML: {exc}") from None


def declared_types(dataset: etree._Element) -> dict[tuple[str, str], str] | None:
    """(table, column) -> XSD type of a dataset's inline schema (.NET WriteXml with the schema), or
    None when it has none."""
    schema = dataset.find(f"{{{XS}}}schema")
    if schema is None:
        return None
    types = {}
    for table in schema.iter(f"{{{XS}}}element"):
        for column in table.iterfind(f"{{{XS}}}complexType/{{{XS}}}sequence/{{{XS}}}element"):
            types[(table.get("name", "").upper(), column.get("name", "").upper())] = column.get("type", "")
    return types
