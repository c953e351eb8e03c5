"""The King Cloudswitch emulator: ``POST /v1/ws1_xml.asmx`` (SOAP 1.1 and 1.2) + ``/_sandbox/``.

See docs/sandbox_king.md for every behaviour and whether it is documented or assumed.
"""

from __future__ import annotations

import threading

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from lxml import etree

from sandbox.common import Calls, DropResponseMiddleware, Faults, InFlightMiddleware, admin_router
from sandbox.king import soap
from sandbox.king.journal import JournalOperations
from sandbox.king.reads import ReadOperations
from sandbox.king.records import (
    MSG_BAD_ENVIRONMENT,
    MSG_BAD_PARTNER_KEY,
    MSG_SESSION_EXPIRED,
    REFERENCES,
    Refused,
    parse_fields,
    row_text,
)
from sandbox.king.schema import TABLES, ValueProblem
from sandbox.king.store import (
    Administration,
    KingStore,
    Record,
    compile_where,
    matches,
    now,
)
from sandbox.king.wire import PROFILES

# Output parameters per operation, in WSDL order (between <XxxResult> and <Foutmelding>).
OUTPUTS = {
    "Login": ["SessionId"],
    "Logout": [],
    "KeepSession": [],
    "GetAdmInfo": ["Records"],
    "GetStamtabelRecords": ["Records"],
    "CreateStamTabelRecord": ["Primarykey"],
    "UpdateStamtabelRecord": [],
    "DeleteStamtabelRecord": [],
    "CreateJournaalpost": ["Journaalpost", "Primarykey"],
    "UpdateJournaalpost": ["Journaalpost"],
    "DeleteJournaalpost": [],
}
WRITES = {
    "CreateStamTabelRecord",
    "UpdateStamtabelRecord",
    "DeleteStamtabelRecord",
    "CreateJournaalpost",
    "UpdateJournaalpost",
    "DeleteJournaalpost",
}


class KingEmulator(ReadOperations, JournalOperations):
    def __init__(self) -> None:
        self.store = KingStore()
        self.calls = Calls()
        self.faults = Faults()
        self.lock = threading.RLock()
        self._query_cache: dict[tuple, list] = {}
        self.app = FastAPI(title="King Cloudswitch sandbox", docs_url=None, redoc_url=None, openapi_url=None)
        self.app.add_middleware(DropResponseMiddleware)
        self.app.add_middleware(InFlightMiddleware, faults=self.faults)
        self.app.include_router(
            admin_router(name="king", state=self.state, load=self.load, calls=self.calls, faults=self.faults)
        )
        self.wire = PROFILES["default"]
        self.app.add_api_route("/_sandbox/profile", self.admin_get_profile, methods=["GET"])
        self.app.add_api_route("/_sandbox/profile", self.admin_profile, methods=["POST"])
        self.app.add_api_route("/_sandbox/bookings", self.admin_hand_booking, methods=["POST"])
        self.app.add_api_route("/_sandbox/answer_shape", self.admin_answer_shape, methods=["POST"])
        self.app.add_api_route("/_sandbox/journal_numbering", self.admin_journal_numbering, methods=["POST"])
        for path in ("/v1/ws1_xml.asmx", "/ws1_xml.asmx"):
            self.app.add_api_route(path, self.endpoint, methods=["POST"], include_in_schema=False)
        self.operations = {
            "Login": self.login,
            "Logout": self.logout,
            "KeepSession": self.keep_session,
            "GetAdmInfo": self.get_adm_info,
            "GetStamtabelRecords": self.get_stamtabel_records,
            "CreateStamTabelRecord": self.create_stamtabel_record,
            "UpdateStamtabelRecord": self.update_stamtabel_record,
            "DeleteStamtabelRecord": self.delete_stamtabel_record,
            "CreateJournaalpost": self.create_journaalpost,
            "UpdateJournaalpost": self.update_journaalpost,
            "DeleteJournaalpost": self.delete_journaalpost,
        }

    # -- contract used by sandbox/server.py --------------------------------------------------------

    def load(self, section: dict) -> None:
        if section.get("generate") is not None:
            from sandbox.king.generate import generate_section

            section = generate_section(int(section["generate"]), int(section.get("seed", 1)))
        with self.lock:
            self.store.load(section)
            self.wire = PROFILES[section.get("profile") or "default"]
            self._query_cache.clear()

    def state(self) -> dict:
        with self.lock:
            return {**self.store.state(), "profile": self.wire.name}

    def admin_get_profile(self) -> dict:
        return {"name": self.wire.name}

    async def admin_profile(self, request: Request):
        """``POST /_sandbox/profile {"name": "default" | "alt"}`` (sandbox/king/wire.py), as for Qics."""
        body = await request.json()
        name = body.get("name") if isinstance(body, dict) else None
        if name not in PROFILES:
            return JSONResponse(
                {"error": f"no King wire profile {name!r}: {sorted(PROFILES)}"}, status_code=400
            )
        with self.lock:
            self.wire = PROFILES[name]
            self._query_cache.clear()
        return {"name": self.wire.name}

    def expire_sessions(self) -> None:
        with self.lock:
            self.store.sessions.expire_all()

    # -- the SOAP endpoint -----------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        try:
            version, operation, params = soap.read_request(body, request.headers)
        except soap.SoapFault as fault:
            self.calls.add("(invalid request)")
            return self._fault(fault)
        self.calls.add(operation)
        early = await self.faults.before(operation, expire=self.expire_sessions, request=request)
        if early is not None:
            return early
        handler = self.operations.get(operation)
        if handler is None:
            return self._fault(
                soap.SoapFault(
                    f"Server did not recognize the value of HTTP Header SOAPAction: {soap.NS}{operation}.",
                    version=version,
                )
            )
        outputs: dict = {}
        try:
            with self.lock:
                if operation in WRITES:
                    self._query_cache.clear()  # paged reads reuse one query result until data changes
                outputs = handler(params) or {}
            result, error = True, ""
        except Refused as refusal:
            result, error = False, str(refusal)
        except Exception as exc:  # an emulator bug: answer like ASP.NET does
            return self._fault(
                soap.SoapFault(
                    f"Server was unable to process request. ---> {exc}", client=False, version=version
                )
            )
        if result and operation in WRITES:
            self.faults.drop_after_commit(request, operation)
        body_out = soap.response(
            version, operation, result, [(name, outputs.get(name)) for name in OUTPUTS[operation]], error
        )
        return Response(body_out, status_code=200, media_type=soap.CONTENT_TYPES[version])

    @staticmethod
    def _fault(fault: soap.SoapFault) -> Response:
        return Response(soap.fault(fault), status_code=500, media_type=soap.CONTENT_TYPES[fault.version])

    # -- session ---------------------------------------------------------------------------------

    def _adm(self, params: dict) -> Administration:
        session_id = str(params.get("SessionId") or "")
        environment_code = str(params.get("Omgevingscode") or "")
        partner_key = str(params.get("PartnerKey") or "")
        if not self.store.sessions.touch(session_id, environment_code, partner_key):
            raise Refused(MSG_SESSION_EXPIRED)
        return self.store.administrations[environment_code]

    def login(self, params: dict) -> dict:
        partner_key = str(params.get("PartnerKey") or "")
        environment_code = str(params.get("Omgevingscode") or "")
        if partner_key not in self.store.partner_keys:
            raise Refused(MSG_BAD_PARTNER_KEY)
        adm = self.store.administrations.get(environment_code)
        if adm is None:
            raise Refused(MSG_BAD_ENVIRONMENT)
        return {"SessionId": self.store.sessions.open(environment_code, partner_key, adm.adm_number)}

    def logout(self, params: dict) -> dict:
        self._adm(params)
        self.store.sessions.close(str(params.get("SessionId")))
        return {}

    def keep_session(self, params: dict) -> dict:
        self._adm(params)
        return {}

    # -- reads -----------------------------------------------------------------------------------

    def _dataset(self, params: dict, *names: str) -> etree._Element:
        for name in names:
            if name in params:
                try:
                    return soap.parse_dataset(params[name], name)
                except ValueError as exc:
                    raise Refused(str(exc)) from None
        raise Refused(f"Parameter {names[0]} ontbreekt")

    # -- master-data writes ----------------------------------------------------------------------

    def _check_references(self, adm: Administration, table: str, record: dict) -> None:
        for field, target in REFERENCES.get(table, {}).items():
            value = record.get(field)
            if value not in (None, "", 0) and not adm.exists(target, value):
                raise Refused(f"{field} {value} bestaat niet in tabel {target}")

    def _select(self, adm: Administration, selection: etree._Element | None) -> tuple[str, list]:
        if selection is None:
            raise Refused("SELECTION ontbreekt")
        values, raw = row_text(selection), row_text(selection, strip=False)
        table = values.get("TABLE", "").upper()
        if table not in TABLES:
            raise Refused(f"Tabel {table} is onbekend")
        if not values.get("WHEREFIELDS"):
            raise Refused("WHEREFIELDS ontbreekt")
        try:
            conditions = compile_where(
                table, raw.get("WHEREFIELDS", ""), raw.get("WHEREOPERATORS", ""), raw.get("WHEREVALUES", "")
            )
        except ValueProblem as exc:
            raise Refused(str(exc)) from None
        found = [r for r in adm.tables[table] if matches(r, conditions)]
        if not found:
            raise Refused(f"Geen record gevonden in tabel {table} met de opgegeven selectie")
        if len(found) > 1:
            raise Refused(f"De selectie is niet uniek: {len(found)} records in tabel {table}")
        return table, found

    def create_stamtabel_record(self, params: dict) -> dict:
        adm = self._adm(params)
        dataset = self._dataset(params, "Stamtabel", "Mutatie")
        table = (
            (dataset.findtext("METADATA/TABLE") or dataset.findtext("SELECTION/TABLE") or "").strip().upper()
        )
        if table not in TABLES:
            raise Refused(f"Tabel {table} is onbekend")
        if table == "BOE":
            raise Refused("Boekingen worden aangemaakt met CreateJournaalpost")
        data = dataset.findall("DATA")
        if len(data) != 1:
            raise Refused("Stamtabel moet precies een DATA-rij bevatten")
        values = parse_fields(table, row_text(data[0]))
        key_fields = TABLES[table]["key"]
        key_field = key_fields[0]
        if values.get(key_field) in (None, ""):
            if TABLES[table]["fields"][key_field][0] != "N":
                raise Refused(f"Veld {key_field} is verplicht")
            numbers = [r.get(key_field) or 0 for r in adm.tables[table]]
            low = int(adm.adm_info.get("BASFIN", {}).get("ONDERDEB", 10000)) if table == "DEB" else 1
            values[key_field] = max([low - 1, *numbers]) + 1
        if adm.exists(table, values[key_field]):
            raise Refused(f"Er bestaat al een record met {key_field} {values[key_field]} in tabel {table}")
        if table == "DEB":
            if not values.get("ZKSL"):
                raise Refused("Veld ZKSL is verplicht")
            if any(r.get("ZKSL", "").casefold() == values["ZKSL"].casefold() for r in adm.tables["DEB"]):
                raise Refused(f"Er bestaat al een debiteur met zoeksleutel {values['ZKSL']}")
            conditions = adm.tables["BETCOND"]
            values.setdefault("BETCOND", conditions[0]["NR"] if conditions else None)
            values.setdefault("BTWPL", "B")
            values.setdefault("SLUITREK", 1300)
            values.setdefault("BLOK", False)
        self._check_references(adm, table, values)
        record = Record(values)
        record.mutdate = now()
        adm.tables[table].append(record)
        return {"Primarykey": ";".join(str(record.get(name)) for name in key_fields)}

    def update_stamtabel_record(self, params: dict) -> dict:
        adm = self._adm(params)
        dataset = self._dataset(params, "Mutatie", "Stamtabel")
        table, found = self._select(adm, dataset.find("SELECTION"))
        data = dataset.find("DATA")
        if data is None:
            raise Refused("DATA ontbreekt")
        values = parse_fields(table, row_text(data))
        record = found[0]
        for name in TABLES[table]["key"]:
            if name in values and values[name] != record.get(name):
                raise Refused(f"Veld {name} is de sleutel en kan niet worden gewijzigd")
        self._check_references(adm, table, values)  # only what is written (fixtures may hold bad links)
        record.update(values)
        record.mutdate = now()
        return {}

    def delete_stamtabel_record(self, params: dict) -> dict:
        adm = self._adm(params)
        dataset = self._dataset(params, "Mutatie", "Stamtabel")
        table, found = self._select(adm, dataset.find("SELECTION"))
        if table == "BOE":
            raise Refused("Boekingen worden verwijderd met DeleteJournaalpost")
        record = found[0]
        key_value = record.get(TABLES[table]["key"][0])
        in_use = [
            other
            for other, refs in REFERENCES.items()
            for field, target in refs.items()
            if target == table and any(r.get(field) == key_value for r in adm.tables[other])
        ]
        if table == "DEB" and any(r.get("REK") == key_value for r in adm.tables["BOE"]):
            in_use.append("BOE")
        if in_use:
            raise Refused(
                f"Record is in gebruik ({', '.join(sorted(set(in_use)))}) en kan niet worden verwijderd"
            )
        adm.tables[table].remove(record)
        return {}
