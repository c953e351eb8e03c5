"""The QicsMilestones emulator: OAuth2 endpoints and the V3 OData entity sets over FastAPI."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from sandbox.common import Calls, DropResponseMiddleware, Faults, admin_router
from sandbox.qics.odata import ODataError, parse_filter, parse_orderby, sort_records, to_json
from sandbox.qics.schema import SETS
from sandbox.qics.store import MAX_PAGE_SIZE, QicsStore

ODATA = "/api/V3/odata"
_KEY_RE = re.compile(r"^(?P<set>[A-Za-z]+)(?:\((?P<key>[^)]*)\))?(?P<rest>/.*)?$")


def _odata_error(error: ODataError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _unauthorized(description: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "Unauthorized", "message": "Authorization has been denied for this request."}},
        status_code=401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


class QicsEmulator:
    def __init__(self, seed: int | None = None):
        self.store = QicsStore()
        self.calls = Calls()
        self.faults = Faults(seed)
        self.app = self._build()

    # -- contract used by sandbox/server.py ----------------------------------------------------

    def load(self, section: dict) -> None:
        self.store.load(section or {})

    def state(self) -> dict:
        return self.store.state()

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

        @app.get("/api/oauth2/oauth2/auth")
        async def authorize(request: Request):
            self.calls.add("GET auth")
            fault = await self.faults.before("GET auth", expire=self.expire_tokens)
            if fault is not None:
                return fault
            params = dict(request.query_params)
            client = self.store.oauth.clients.get(params.get("client_id", ""))
            redirect_uri = params.get("redirect_uri", "")
            if client is None:
                return _oauth_error("invalid_client", "Unknown client_id.")
            if not redirect_uri or client.get("redirect_uri", "") not in redirect_uri:
                return _oauth_error(
                    "invalid_request", "redirect_uri does not match the registered Redirect Uri."
                )
            if params.get("response_type") != "code":
                return _oauth_error("unsupported_response_type", "Only response_type=code is supported.")
            with self.store.lock:
                code = self.store.oauth.new_code(client["client_id"], redirect_uri)
            extra = {
                k: v for k, v in params.items() if k not in ("response_type", "client_id", "redirect_uri")
            }
            parts = urlsplit(redirect_uri)
            query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items()) + [("code", code)]
            return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), status_code=302)

        @app.post("/api/oauth2/oauth2/token")
        async def token(request: Request):
            self.calls.add("POST token")
            fault = await self.faults.before("POST token", expire=self.expire_tokens)
            if fault is not None:
                return fault
            form = dict(await request.form())
            client_id, secret = form.get("client_id"), form.get("client_secret")
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("basic "):
                try:
                    client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    return _oauth_error("invalid_client", "Malformed Basic authorization.", 401)
            oauth = self.store.oauth
            with self.store.lock:
                if not oauth.client_ok(client_id, secret):
                    return _oauth_error("invalid_client", "Client authentication failed.")
                grant_type = form.get("grant_type")
                if grant_type == "authorization_code":
                    code = oauth.codes.get(str(form.get("code", "")))
                    if code is None or code["used"] or code["client_id"] != client_id:
                        return _oauth_error("invalid_grant", "The authorization code is invalid or was used.")
                    if form.get("redirect_uri") != code["redirect_uri"]:
                        return _oauth_error(
                            "invalid_grant", "redirect_uri differs from the authorization request."
                        )
                    code["used"] = True
                    body = oauth.issue(client_id)
                elif grant_type == "refresh_token":
                    grant = oauth.refresh.get(str(form.get("refresh_token", "")))
                    if grant is None or grant["status"] != "active" or grant["client_id"] != client_id:
                        return _oauth_error(
                            "invalid_grant", "The refresh token is invalid, expired, used or revoked."
                        )
                    grant["status"] = "used"
                    oauth.refresh_count += 1
                    body = oauth.issue(client_id)
                else:
                    return _oauth_error(
                        "unsupported_grant_type", f"grant_type {grant_type!r} is not supported."
                    )
            self.faults.drop_after_commit(request, "POST token")
            return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

        @app.api_route(ODATA + "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def odata(path: str, request: Request):
            match = _KEY_RE.match(path)
            set_name = match.group("set") if match else path
            entity = SETS.get(set_name)
            raw_key = match.group("key") if match else None
            rest = match.group("rest") if match else None
            if rest == "/Pdf":
                operation = f"{request.method} Invoice/Pdf"
            elif raw_key is not None and request.method == "GET":
                operation = f"GET {set_name}(key)"
            else:
                operation = f"{request.method} {set_name}"
            self.calls.add(operation)
            fault = await self.faults.before(operation, expire=self.expire_tokens)
            if fault is not None:
                return fault
            auth = request.headers.get("authorization", "")
            if not auth.lower().startswith("bearer "):
                return _unauthorized("No bearer token.")
            with self.store.lock:
                valid = self.store.oauth.access_ok(auth[7:].strip())
            if not valid:
                return _unauthorized("The access token is invalid or has expired.")
            try:
                if entity is None or not match or (rest and not (rest == "/Pdf" and set_name == "Invoice")):
                    raise ODataError(404, "NotFound", f"No resource matches the request URI '{path}'.")
                key = None
                if raw_key is not None:
                    if not re.fullmatch(r"-?\d+[lL]?", raw_key.strip()):
                        raise ODataError(400, "InvalidKey", f"The key '{raw_key}' is not a valid Edm.Int64.")
                    key = int(raw_key.strip().rstrip("lL"))
                if rest == "/Pdf":
                    if request.method != "GET":
                        raise ODataError(405, "MethodNotAllowed", "Only GET is supported on Pdf.")
                    return self._pdf(key)
                if request.method == "GET":
                    if key is not None:
                        with self.store.lock:
                            return JSONResponse(self._entity_body(entity, self.store.get(entity, key)))
                    return self._collection(entity, request)
                if request.method == "POST" and key is None:
                    if not entity.creatable:
                        raise ODataError(
                            405, "MethodNotAllowed", f"{entity.name} cannot be inserted through the API."
                        )
                    record = self.store.create(entity, await _json_body(request))
                    self.faults.drop_after_commit(request, operation)
                    return JSONResponse(
                        self._entity_body(entity, record),
                        status_code=201,
                        headers={
                            "Location": f"{request.base_url}api/V3/odata/{entity.name}({record[entity.key]})"
                        },
                    )
                if request.method == "PUT" and key is not None:
                    if not entity.writable:
                        raise ODataError(
                            405, "MethodNotAllowed", f"{entity.name} cannot be updated through the API."
                        )
                    record = self.store.replace(entity, key, await _json_body(request))
                    self.faults.drop_after_commit(request, operation)
                    return JSONResponse(self._entity_body(entity, record), status_code=200)
                raise ODataError(
                    405, "MethodNotAllowed", f"{request.method} is not supported on this resource."
                )
            except ODataError as error:
                return _odata_error(error)

        return app

    def _entity_body(self, entity, record: dict) -> dict:
        return {"@odata.context": f"$metadata#{entity.name}/$entity", **to_json(entity, record)}

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

    def _collection(self, entity, request: Request) -> JSONResponse:
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
            bad = [s for s in select if s not in entity.fields]
            if bad:
                raise ODataError(400, "InvalidSelect", f"$select: unknown properties {', '.join(bad)}")
        predicate = parse_filter(entity, params["$filter"]) if params.get("$filter") else None
        order = parse_orderby(entity, params["$orderby"]) if params.get("$orderby") else [(entity.key, False)]
        with self.store.lock:
            records = [r for r in self.store.data[entity.name].values() if predicate is None or predicate(r)]
            page_size = self.store.page_size
        records = sort_records(records, order)
        limit = min(top, MAX_PAGE_SIZE) if top is not None else page_size
        page = records[skip : skip + limit]
        wanted_end = len(records) if top is None else min(len(records), skip + top)
        body: dict = {
            "@odata.context": f"{request.base_url}api/V3/odata/$metadata#{entity.name}",
            "value": [to_json(entity, r, select) for r in page],
        }
        if params.get("$count") == "true":
            body["@odata.count"] = len(records)
        next_skip = skip + len(page)
        if next_skip < wanted_end:
            query = [(k, v) for k, v in params.multi_items() if k not in ("$skip", "$top")]
            query.append(("$skip", str(next_skip)))
            if top is not None:
                query.append(("$top", str(top - len(page))))
            body["@odata.nextLink"] = f"{request.base_url}api/V3/odata/{entity.name}?{urlencode(query)}"
        return JSONResponse(body)


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
