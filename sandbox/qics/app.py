"""The QicsMilestones emulator: OAuth2 endpoints and the V3 OData entity sets over FastAPI, served
in a wire profile (sandbox/qics/profile.py: ``default``, or ``alt`` through the fixture key
``profile``, ``python -m sandbox serve --qics-profile alt`` or ``POST /_sandbox/profile``)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.common import Calls, DropResponseMiddleware, Faults, InFlightMiddleware, admin_router
from sandbox.qics.auth import api_key_ok, forbidden_api_key, register_oauth, unauthorized
from sandbox.qics.metadata import csdl
from sandbox.qics.odata import ODataError, parse_filter, parse_orderby, sort_records, to_json
from sandbox.qics.profile import profile_named
from sandbox.qics.schema import SETS
from sandbox.qics.store import MAX_PAGE_SIZE, QicsStore

ODATA = "/api/V3/odata"
_KEY_RE = re.compile(r"^(?P<set>[A-Za-z]+)(?:\((?P<key>[^)]*)\))?(?P<rest>/.*)?$")


def _odata_error(error: ODataError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


class QicsEmulator:
    def __init__(self, seed: int | None = None, profile: str = "default"):
        self.start_profile = profile_named(profile)  # what a fixture without "profile" gets
        self.profile = self.start_profile
        self.store = QicsStore()
        self.calls = Calls()
        self.faults = Faults(seed)
        self.app = self._build()

    # -- contract used by sandbox/server.py ----------------------------------------------------

    def load(self, section: dict) -> None:
        section = section or {}
        profile = profile_named(section["profile"]) if section.get("profile") else self.start_profile
        self.store.load(section)
        self.profile = profile

    def state(self) -> dict:
        return {"profile": self.profile.name, **self.store.state()}

    def expire_tokens(self) -> None:
        with self.store.lock:
            self.store.oauth.expire_access()

    def revoke_refresh_tokens(self) -> None:
        with self.store.lock:
            self.store.oauth.revoke_refresh()

    # -- app -----------------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI(title="QicsMilestones emulator", docs_url=None, redoc_url=None, openapi_url=None)
        app.add_middleware(DropResponseMiddleware)
        app.add_middleware(InFlightMiddleware, faults=self.faults)
        app.include_router(
            admin_router(name="qics", state=self.state, load=self.load, calls=self.calls, faults=self.faults)
        )

        @app.post("/_sandbox/oauth/expire")
        def admin_expire() -> dict:
            self.expire_tokens()
            return {"expired": True}

        @app.post("/_sandbox/oauth/revoke")
        def admin_revoke() -> dict:
            self.revoke_refresh_tokens()
            return {"revoked": True}

        @app.delete("/_sandbox/entities/{name}/{key}")
        def admin_delete(name: str, key: int) -> dict:
            """A record deleted by a person in the Qics UI (the API itself has no DELETE)."""
            return {"deleted": self.store.delete_by_hand(name, key)}

        @app.get("/_sandbox/profile")
        def admin_profile() -> dict:
            return self.profile.describe()

        @app.post("/_sandbox/profile")
        async def admin_set_profile(request: Request):
            body = await request.json()
            try:
                self.profile = profile_named(body.get("name") if isinstance(body, dict) else None)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return self.profile.describe()

        register_oauth(app, self)

        @app.api_route(ODATA + "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def odata(path: str, request: Request):
            return await self._odata(path, request)

        @app.api_route("/api/V3/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def other(path: str, request: Request):
            """Routes outside the OData root: only a profile's PDF route may live here."""
            return await self._odata(None, request)

        return app

    async def _odata(self, path: str | None, request: Request) -> Response:
        profile = self.profile
        pdf = profile.pdf_pattern.match(request.url.path)
        match = _KEY_RE.match(path) if path is not None and not pdf else None
        served = match.group("set") if match else path
        stored = profile.stored_set(served) if match else None
        raw_key = match.group("key") if match else None
        rest = match.group("rest") if match else None
        if pdf:
            operation = f"{request.method} Invoice/Pdf"
        elif path is None:
            operation = f"{request.method} (no such route)"
        elif path == "$metadata":
            operation = "GET $metadata"
        elif raw_key is not None and request.method == "GET":
            operation = f"GET {served}(key)"
        else:
            operation = f"{request.method} {served}"
        self.calls.add(operation)
        fault = await self.faults.before(operation, expire=self.expire_tokens, request=request)
        if fault is not None:
            return fault
        if not api_key_ok(self, request):
            return forbidden_api_key(profile.api_key_header)
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return unauthorized("No bearer token.")
        with self.store.lock:
            valid = self.store.oauth.access_ok(auth[7:].strip())
        if not valid:
            return unauthorized("The access token is invalid or has expired.")
        try:
            if pdf:
                if request.method != "GET":
                    raise ODataError(405, "MethodNotAllowed", "Only GET is supported on the invoice PDF.")
                return self._pdf(_key(pdf.group("key")))
            if path == "$metadata" and request.method == "GET":
                return Response(csdl(profile), media_type="application/xml")
            if stored is None or rest:
                raise ODataError(
                    404, "NotFound", f"No resource matches the request URI '{request.url.path}'."
                )
            entity = SETS[stored]
            key = _key(raw_key) if raw_key is not None else None
            if request.method == "GET":
                if key is not None:
                    with self.store.lock:
                        record = self.store.get(entity, key)
                    return JSONResponse(self._entity_body(served, stored, record))
                return self._collection(served, stored, request)
            if request.method == "POST" and key is None:
                if not entity.creatable:
                    raise ODataError(405, "MethodNotAllowed", f"{served} cannot be inserted through the API.")
                record = self.store.create(entity, await _json_body(request))
                self.faults.drop_after_commit(request, operation)
                return JSONResponse(
                    self._entity_body(served, stored, record),
                    status_code=201,
                    headers={"Location": f"{request.base_url}api/V3/odata/{served}({record[entity.key]})"},
                )
            if request.method == "PUT" and key is not None:
                if not entity.writable:
                    raise ODataError(405, "MethodNotAllowed", f"{served} cannot be updated through the API.")
                record = self.store.replace(entity, key, await _json_body(request))
                self.faults.drop_after_commit(request, operation)
                return JSONResponse(self._entity_body(served, stored, record), status_code=200)
            raise ODataError(405, "MethodNotAllowed", f"{request.method} is not supported on this resource.")
        except ODataError as error:
            return _odata_error(error)

    def _entity_body(self, served: str, stored: str, record: dict) -> dict:
        view = self.profile.view(served)
        return {
            "@odata.context": f"$metadata#{served}/$entity",
            **to_json(view, self._served(stored, record)),
        }

    def _served(self, stored: str, record: dict) -> dict:
        return self.profile.served_record(stored, record) if self.profile.needs_view(stored) else record

    def _pdf(self, key: int) -> Response:
        with self.store.lock:
            self.store.get(SETS["Invoice"], key)
            content = self.store.pdfs.get(key)
        if content is None:
            raise ODataError(404, "NotFound", f"Invoice {key} has no PDF.")
        return Response(
            content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="invoice-{key}.pdf"'},
        )

    def _collection(self, served: str, stored: str, request: Request) -> JSONResponse:
        profile, view = self.profile, self.profile.view(served)
        params = request.query_params
        known = {"$filter", "$top", "$skip", "$orderby", "$select", "$count", "$format"}
        for name in params:
            if name.startswith("$") and name not in known:
                raise ODataError(400, "UnsupportedQueryOption", f"Query option {name} is not supported.")
        top = _non_negative(params.get("$top"), "$top")
        skip = _non_negative(params.get("$skip"), "$skip") or 0
        select = None
        if params.get("$select"):
            select = [s.strip() for s in params["$select"].split(",") if s.strip()]
            bad = [s for s in select if s not in view.fields]
            if bad:
                raise ODataError(400, "InvalidSelect", f"$select: unknown properties {', '.join(bad)}")
        predicate = parse_filter(view, params["$filter"], profile) if params.get("$filter") else None
        order = parse_orderby(view, params["$orderby"]) if params.get("$orderby") else [(view.key, False)]
        with self.store.lock:
            stored_records = list(self.store.data[stored].values())
            page_size = self.store.page_size
        if profile.needs_view(stored):
            stored_records = [profile.served_record(stored, r) for r in stored_records]
        records = [r for r in stored_records if predicate is None or predicate(r)]
        records = sort_records(records, order)
        limit = min(top, MAX_PAGE_SIZE) if top is not None else page_size
        page = records[skip : skip + limit]
        wanted_end = len(records) if top is None else min(len(records), skip + top)
        body: dict = {
            "@odata.context": f"{request.base_url}api/V3/odata/$metadata#{served}",
            "value": [to_json(view, r, select) for r in page],
        }
        if params.get("$count") == "true":
            body["@odata.count"] = len(records)
        next_skip = skip + len(page)
        if next_skip < wanted_end:
            query = [(k, v) for k, v in params.multi_items() if k not in ("$skip", "$top")]
            query.append(("$skip", str(next_skip)))
            if top is not None:
                query.append(("$top", str(top - len(page))))
            body[profile.next_link] = f"{request.base_url}api/V3/odata/{served}?{urlencode(query)}"
        return JSONResponse(body)


def _key(raw: str) -> int:
    if not re.fullmatch(r"-?\d+[lL]?", raw.strip()):
        raise ODataError(400, "InvalidKey", f"The key '{raw}' is not a valid Edm.Int64.")
    return int(raw.strip().rstrip("lL"))


async def _json_body(request: Request):
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ODataError(400, "InvalidRequest", "The request body is not valid JSON.") from None


def _non_negative(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise ODataError(400, "InvalidQueryOption", f"{name} must be a non-negative integer.")
    return int(value)
