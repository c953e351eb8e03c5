"""QicsMilestonesHook: OAuth2 (rotating refresh token), paged OData reads, writes, invoices, PDFs.

Every request goes through :meth:`ApiHook.send` (timeouts, retries, counters). On the wire,
QicsMilestones serialises 64-bit ids and decimals as JSON strings; this hook returns ids as
``int`` (``Int64`` columns in DataFrames), decimals as :class:`~decimal.Decimal` and booleans as
``bool``, and accepts ids/decimals as numbers or strings (Decimals are sent as strings).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import requests

from king_qics.errors import (
    AuthenticationError,
    KingQicsError,
    OutcomeUnknownError,
    ProtocolError,
    RecordValidationError,
    TransientError,
)
from king_qics.hooks.base import ApiHook

log = logging.getLogger(__name__)

ODATA_ROOT = "/api/V3/odata"

# Decimal fields (JSON strings on the wire); every other field ending in "Id" is a 64-bit id.
DECIMAL_FIELDS = frozenset(
    {
        "Percentage",
        "PriceIndex",
        "SurchargePercentage",
        "Quantity",
        "Price",
        "AmountExclVat",
        "VatPercentage",
        "VatAmount",
        "TotalAmountExclVat",
        "TotalVatAmount",
        "TotalAmountInclVat",
        "BudgetAmount",
        "ContractValue",
    }
)
INTEGER_FIELDS = frozenset({"PaymentTerm", "InvoiceNumberLength", "InvoiceNumberCounter"})
NON_ID_FIELDS = frozenset({"AsyncServerCommandId"})  # "…Id" fields that are not numeric (none known yet)


def _is_id(field: str) -> bool:
    return field.endswith("Id") and field not in NON_ID_FIELDS


@dataclass
class WriteOutcome:
    """The result of one record of ``create_many``/``update_many``."""

    index: int
    key: Any
    record: dict | None = None  # the saved record, as returned by the service
    error: str | None = None  # why the service rejected it (or why its outcome is unknown)

    @property
    def ok(self) -> bool:
        return self.error is None


class QicsMilestonesHook(ApiHook):
    """Access to QicsMilestones REST v3 (OData) with an OAuth2 refresh token."""

    conn_name_attr = "qics_conn_id"
    default_conn_name = "qics_default"
    conn_type = "qics_milestones"
    hook_name = "QicsMilestones (REST v3)"
    api_name = "qics"
    default_max_pages = 100_000
    lines_per_request = 25

    def __init__(
        self,
        qics_conn_id: str = default_conn_name,
        *,
        state_store=None,
        max_pages: int | None = None,
        **kwargs,
    ):
        super().__init__(qics_conn_id, **kwargs)
        self.qics_conn_id = qics_conn_id
        self._state_store = state_store
        self.max_pages = max_pages or self.default_max_pages

    # -- connection ------------------------------------------------------------------------------

    @cached_property
    def state_store(self):
        if self._state_store is None:
            from king_qics.state import StateStore

            self._state_store = StateStore.from_settings()
        return self._state_store

    @cached_property
    def tokens(self):
        from king_qics.hooks.oauth import OAuthTokens

        return OAuthTokens(
            self,
            self.state_store,
            client_id=self.extra("client_id"),
            client_secret=self.extra("client_secret"),
            refresh_token=self.extra("refresh_token"),
        )

    @cached_property
    def company_id(self) -> int | None:
        value = self.extra("company_id")
        return int(value) if value not in (None, "") else None

    # -- transport -------------------------------------------------------------------------------

    def request(
        self, operation: str, method: str, endpoint: str, *, idempotent: bool, **kwargs: Any
    ) -> requests.Response:
        """One authorized request; on HTTP 401 the access token is renewed once and the call repeated
        (a 401 means the request was not processed, so repeating a write is safe)."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        token = self.tokens.access_token()
        for attempt in (1, 2):
            response = self.send(
                operation,
                method,
                endpoint,
                idempotent=idempotent,
                headers={**headers, "Authorization": f"Bearer {token}"},
                **kwargs,
            )
            if response.status_code != 401:
                return response
            if attempt == 1:
                log.info("qics %s: access token refused (HTTP 401); renewing it once", operation)
                token = self.tokens.renew(token)
        raise AuthenticationError(
            f"qics {operation}: HTTP 401 even with a freshly renewed access token (connection"
            f" {self.conn_id!r}); the authorizing QicsMilestones user may lack access."
        )

    def _check(self, response: requests.Response, operation: str, key: Any = None) -> None:
        status = response.status_code
        if status < 400:
            return
        message = _error_message(response)
        if status in (400, 409, 422):
            raise RecordValidationError(key, message)
        if status == 403:
            raise AuthenticationError(
                f"qics {operation}: HTTP 403 forbidden ({message}); the authorizing QicsMilestones user lacks"
                " the right for this operation or company."
            )
        if status == 404:
            raise RecordValidationError(key, f"not found: {message}")
        raise ProtocolError(f"qics {operation}: unexpected HTTP {status}: {message}")

    def _json(self, response: requests.Response, operation: str) -> Any:
        content_type = response.headers.get("Content-Type", "")
        try:
            return response.json()
        except ValueError:
            kind = (
                "an HTML page" if "html" in content_type or response.text.lstrip()[:1] == "<" else "no JSON"
            )
            raise ProtocolError(
                f"qics {operation}: expected JSON but got {kind} (HTTP {response.status_code},"
                f" Content-Type {content_type or 'none'})"
            ) from None

    def _entity_json(self, response: requests.Response, operation: str) -> dict:
        body = self._json(response, operation)
        if not isinstance(body, dict):
            raise ProtocolError(f"qics {operation}: expected a JSON object")
        return _typed(body)

    # -- reads ------------------------------------------------------------------------------------

    def iter_records(
        self,
        entity: str,
        filter: str | None = None,  # noqa: A002 - the OData name
        select: Sequence[str] | None = None,
        top: int | None = None,
        orderby: str | None = None,
    ) -> Iterator[dict]:
        """Every record of an entity set matching the query, page by page (``@odata.nextLink``)."""
        params: dict[str, Any] = {}
        if filter:
            params["$filter"] = filter
        if select:
            params["$select"] = ",".join(select)
        if top is not None:
            params["$top"] = int(top)
        if orderby:
            params["$orderby"] = orderby
        operation = f"GET {entity}"
        endpoint, seen = f"{ODATA_ROOT}/{entity}", set()
        for _page in range(self.max_pages):
            response = self.request(operation, "GET", endpoint, idempotent=True, params=params)
            self._check_read(response, operation)
            body = self._json(response, operation)
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise ProtocolError(f"qics {operation}: expected an OData collection with 'value'")
            for record in body["value"]:
                yield _typed(record)
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return
            if next_link in seen:
                raise ProtocolError(f"qics {operation}: the service repeated a nextLink; stopping")
            seen.add(next_link)
            endpoint, params = self._relative(next_link, operation), {}
        raise ProtocolError(f"qics {operation}: more than {self.max_pages} pages; stopping (paging loop?)")

    def _check_read(self, response: requests.Response, operation: str) -> None:
        if response.status_code == 404:
            raise ProtocolError(
                f"qics {operation}: HTTP 404 ({_error_message(response)}): unknown entity set?"
            )
        if response.status_code == 400:
            raise ProtocolError(f"qics {operation}: query rejected: {_error_message(response)}")
        self._check(response, operation)

    def _relative(self, link: str, operation: str) -> str:
        """A nextLink as an endpoint on our host (never send the token to another host)."""
        base, target = urlsplit(self.url("")), urlsplit(link)
        if target.scheme or target.netloc:
            if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
                raise ProtocolError(f"qics {operation}: nextLink points to another host; refusing to follow")
        path = target.path if target.path.startswith("/") else f"{ODATA_ROOT}/{target.path}"
        return f"{path}?{target.query}" if target.query else path

    def read(
        self,
        entity: str,
        filter: str | None = None,  # noqa: A002
        select: Sequence[str] | None = None,
        top: int | None = None,
        orderby: str | None = None,
    ):
        """All matching records as a DataFrame (ids Int64, decimals Decimal, booleans bool)."""
        return to_frame(list(self.iter_records(entity, filter, select, top, orderby)), select)

    def get(self, entity: str, id: Any) -> dict | None:  # noqa: A002
        """One record by its numeric id, or None when it does not exist."""
        key = _key(id)
        operation = f"GET {entity}(key)"
        response = self.request(operation, "GET", f"{ODATA_ROOT}/{entity}({key})", idempotent=True)
        if response.status_code == 404:
            return None
        self._check(response, operation, key)
        return self._entity_json(response, operation)

    def find(self, entity: str, natural_key: dict) -> dict | None:
        """The one record whose fields equal ``natural_key`` (None if none; error if several)."""
        found = list(self.iter_records(entity, filter=odata_filter(natural_key)))
        if len(found) > 1:
            raise ProtocolError(f"qics: {len(found)} {entity} records match {natural_key}; expected one")
        return found[0] if found else None

    # -- writes -----------------------------------------------------------------------------------

    def create(self, entity: str, record: dict, natural_key: dict | None = None) -> dict:
        """POST a new record; returns the saved record.

        POST is not idempotent. When its outcome is unknown (connection lost after sending) and a
        ``natural_key`` is given, the record is looked up first and only POSTed again if it is not
        there; without a natural key the OutcomeUnknownError is raised.
        """
        operation = f"POST {entity}"
        key = natural_key or None
        payload = to_wire(record)
        for attempt in (1, 2):
            try:
                response = self.request(
                    operation, "POST", f"{ODATA_ROOT}/{entity}", idempotent=False, json=payload
                )
            except OutcomeUnknownError:
                if not natural_key:
                    raise
                existing = self.find(entity, natural_key)
                if existing is not None:
                    log.info(
                        "qics %s %s: outcome was unknown; the record exists, so it did land", operation, key
                    )
                    return existing
                if attempt == 2:
                    raise
                log.info(
                    "qics %s %s: outcome was unknown and the record is absent; sending once more",
                    operation,
                    key,
                )
                continue
            self._check(response, operation, key)
            return self._entity_json(response, operation)
        raise AssertionError("unreachable")

    def update(self, entity: str, id: Any, record: dict) -> dict:  # noqa: A002
        """PUT (replace) a record by id; returns the saved record."""
        key = _key(id)
        operation = f"PUT {entity}"
        response = self.request(
            operation, "PUT", f"{ODATA_ROOT}/{entity}({key})", idempotent=True, json=to_wire(record)
        )
        self._check(response, operation, key)
        if response.status_code == 204 or not response.content:
            return self.get(entity, key) or {}
        return self._entity_json(response, operation)

    def create_many(
        self, entity: str, records: Iterable[dict], natural_key_fields: Sequence[str] | None = None
    ) -> list[WriteOutcome]:
        """Create each record; a rejected record is reported and the batch goes on."""
        outcomes = []
        for index, record in enumerate(records):
            natural_key = {f: record.get(f) for f in natural_key_fields} if natural_key_fields else None
            outcomes.append(
                self._outcome(index, natural_key or index, self.create, entity, record, natural_key)
            )
        return outcomes

    def update_many(self, entity: str, items: Iterable[tuple[Any, dict]]) -> list[WriteOutcome]:
        """Update each (id, record); a rejected record is reported and the batch goes on."""
        return [self._outcome(i, id_, self.update, entity, id_, rec) for i, (id_, rec) in enumerate(items)]

    def _outcome(self, index: int, key: Any, write, *args) -> WriteOutcome:
        try:
            return WriteOutcome(index, key, record=write(*args))
        except AuthenticationError:
            raise  # every further record would fail the same way
        except RecordValidationError as exc:
            return WriteOutcome(index, key, error=exc.message)
        except (TransientError, ProtocolError) as exc:
            return WriteOutcome(index, key, error=str(exc))

    # -- invoices and sync state ------------------------------------------------------------------

    def processed_invoices(self, company_id: Any, date_from: dt.date | str | None = None) -> list[dict]:
        """Processed invoices of a company (optionally dated on/after ``date_from``), each with its
        ``lines`` (list of InvoiceLine records, by InvoiceLineId)."""
        conditions = {"CompanyId": _key(company_id), "InvoiceHeaderState": "Processed"}
        filter_ = odata_filter(conditions)
        if date_from is not None:
            day = date_from.isoformat() if isinstance(date_from, dt.date) else str(date_from)[:10]
            filter_ += f" and InvoiceDate ge {day}"
        invoices = list(self.iter_records("Invoice", filter=filter_, orderby="InvoiceHeaderId"))
        lines: dict[int, list[dict]] = {inv["InvoiceHeaderId"]: [] for inv in invoices}
        ids = list(lines)
        for start in range(0, len(ids), self.lines_per_request):
            chunk = ids[start : start + self.lines_per_request]
            line_filter = " or ".join(f"InvoiceHeaderId eq {i}" for i in chunk)
            for line in self.iter_records("InvoiceLine", filter=line_filter, orderby="InvoiceLineId"):
                lines.setdefault(line["InvoiceHeaderId"], []).append(line)
        return [{**invoice, "lines": lines[invoice["InvoiceHeaderId"]]} for invoice in invoices]

    def invoice_pdf(self, invoice_id: Any) -> bytes | None:
        """The invoice's PDF, or None when the invoice has none."""
        key = _key(invoice_id)
        operation = "GET Invoice/Pdf"
        response = self.request(
            operation,
            "GET",
            f"{ODATA_ROOT}/Invoice({key})/Pdf",
            idempotent=True,
            headers={"Accept": "application/pdf"},
        )
        if response.status_code == 404:
            return None
        self._check(response, operation, key)
        if not response.content.startswith(b"%PDF"):
            raise ProtocolError(f"qics {operation}: invoice {key}: the answer is not a PDF")
        return response.content

    def post_entity_state(
        self,
        *,
        entity_id: Any,
        data_source: str,
        data_source_date: dt.datetime | None = None,
        is_error: bool = False,
        data_source_key: str | None = None,
        message: str | None = None,
        entity_type: str = "Invoice",
        company_id: Any = None,
    ) -> dict:
        """Report an entity's sync state (e.g. "invoice booked as entry X", or an error) to Qics."""
        when = data_source_date or dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        record = {
            "CompanyId": company_id if company_id is not None else self.company_id,
            "EntityId": entity_id,
            "EntityType": entity_type,
            "DataSource": data_source,
            "DataSourceKey": data_source_key,
            "DataSourceDate": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "IsError": bool(is_error),
            "Message": message,
        }
        return self.create("EntityState", record)

    def test_connection(self) -> tuple[bool, str]:
        """Really obtain an access token and read the Company entity set."""
        try:
            companies = list(self.iter_records("Company", select=["CompanyId", "Name"]))
        except KingQicsError as exc:
            return False, str(exc)
        except Exception as exc:  # noqa: BLE001 - the UI button shows any failure
            return False, f"{type(exc).__name__}: {exc}"
        names = ", ".join(f"{c['CompanyId']} {c.get('Name')}" for c in companies[:5])
        if self.company_id is not None and all(c["CompanyId"] != self.company_id for c in companies):
            return (
                False,
                f"Connected, but company {self.company_id} is not visible (visible: {names or 'none'})",
            )
        return True, f"Connected to QicsMilestones; {len(companies)} companies visible ({names})"


# -- helpers --------------------------------------------------------------------------------------


def _key(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"a QicsMilestones id must be an integer, got {value!r}") from None


def _typed(record: dict) -> dict:
    """A record from the wire with ids as int, decimals as Decimal (booleans are native JSON)."""
    out = {}
    for field, value in record.items():
        if field.startswith("@odata.") or value is None or isinstance(value, bool):
            out[field] = value if not field.startswith("@odata.") else None
            if field.startswith("@odata."):
                del out[field]
            continue
        if field in DECIMAL_FIELDS:
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise ProtocolError(f"qics: field {field} is not a decimal number") from None
        elif field in INTEGER_FIELDS or _is_id(field):
            try:
                value = int(str(value))
            except ValueError:
                raise ProtocolError(f"qics: field {field} is not an integer id") from None
        out[field] = value
    return out


def to_wire(record: dict) -> dict:
    """A record as JSON: Decimals as strings, numpy/pandas scalars as plain values, NA as null."""
    out = {}
    for field, value in record.items():
        if value is None:
            out[field] = None
            continue
        try:
            import pandas as pd

            if value is pd.NA or value is pd.NaT:
                out[field] = None
                continue
        except ImportError:  # pragma: no cover
            pass
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalar
        if isinstance(value, float) and math.isnan(value):
            value = None
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, float) and field in DECIMAL_FIELDS:
            value = str(Decimal(str(value)))
        out[field] = value
    return out


def odata_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if hasattr(value, "item"):
        return odata_literal(value.item())
    text = str(value).replace("'", "''")
    return f"'{text}'"


def odata_filter(conditions: dict) -> str:
    """``{"CustomerCode": "10000", "CompanyId": 1}`` -> ``CustomerCode eq '10000' and CompanyId eq 1``."""
    parts = []
    for field, value in conditions.items():
        if (_is_id(field) or field in INTEGER_FIELDS) and value is not None and not isinstance(value, bool):
            value = _key(value)
        parts.append(f"{field} eq {odata_literal(value)}")
    return " and ".join(parts)


def _error_message(response: requests.Response) -> str:
    """The service's error text: OData ``error.message`` plus each detail's target, or OAuth error."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        if text[:1] == "<":
            return f"HTTP {response.status_code} (an HTML error page)"
        return f"HTTP {response.status_code}: {text[:200]}" if text else f"HTTP {response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("code") or f"HTTP {response.status_code}")
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        if details:
            message = "; ".join(f"{d.get('target')}: {d.get('message')}" for d in details)
        return message
    if isinstance(error, str):
        return f"{error}: {body.get('error_description', '')}".strip(": ")
    if isinstance(body, dict) and body.get("Message"):  # ASP.NET Web API default error shape
        return str(body["Message"])
    return f"HTTP {response.status_code}"


def to_frame(records: list[dict], columns: Sequence[str] | None = None):
    import pandas as pd

    names = list(columns or [])
    for record in records:
        for name in record:
            if name not in names:
                names.append(name)
    data = {}
    for name in names:
        values = [r.get(name) for r in records]
        present = [v for v in values if v is not None]
        if (_is_id(name) or name in INTEGER_FIELDS) and all(isinstance(v, int) for v in present):
            data[name] = pd.array(values, dtype="Int64")
        elif present and all(isinstance(v, bool) for v in present):
            data[name] = pd.array(values, dtype="bool" if len(present) == len(values) else "boolean")
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, index=pd.RangeIndex(len(records)))
