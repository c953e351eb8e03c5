"""The emulator's OAuth2 endpoints (authorize, token) and the checks every request passes: the API
key (when the wire profile wants one) and the bearer token."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from sandbox.qics.profile import API_KEY

if TYPE_CHECKING:
    from sandbox.qics.app import QicsEmulator


def oauth_error(error: str, description: str, status: int = 400, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def unauthorized(description: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "Unauthorized", "message": "Authorization has been denied for this request."}},
        status_code=401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def api_key_ok(emulator: QicsEmulator, request: Request) -> bool:
    """The request carries an API key the profile's header accepts (always true without one)."""
    header = emulator.profile.api_key_header
    if header is None:
        return True
    given = request.headers.get(header, "")
    keys = {API_KEY} | {str(c["api_key"]) for c in emulator.store.oauth.clients.values() if c.get("api_key")}
    return any(secrets.compare_digest(given, k) for k in keys)


def forbidden_api_key(header: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "Forbidden", "message": f"The API key (header {header}) is missing or unknown."}},
        status_code=403,
    )


def _client_credentials(emulator: QicsEmulator, request: Request, form: dict):
    """(client_id, secret) the way this profile takes them, or an error response."""
    auth = request.headers.get("authorization", "")
    basic = auth.lower().startswith("basic ")
    if emulator.profile.client_auth == "basic":
        if not basic:
            return oauth_error(
                "invalid_client",
                "Client authentication failed: use HTTP Basic.",
                401,
                {"WWW-Authenticate": 'Basic realm="QicsMilestones"'},
            )
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return oauth_error("invalid_client", "Malformed Basic authorization.", 401)
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)  # RFC 6749 §2.3.1: form-encoded first
    if basic:
        return oauth_error(
            "invalid_client", "Client authentication failed: send client_id and client_secret in the body."
        )
    return form.get("client_id"), form.get("client_secret")


def register_oauth(app: FastAPI, emulator: QicsEmulator) -> None:
    @app.get("/api/oauth2/oauth2/auth")
    async def authorize(request: Request):
        emulator.calls.add("GET auth")
        fault = await emulator.faults.before("GET auth", expire=emulator.expire_tokens)
        if fault is not None:
            return fault
        params = dict(request.query_params)
        client = emulator.store.oauth.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None:
            return oauth_error("invalid_client", "Unknown client_id.")
        if not redirect_uri or client.get("redirect_uri", "") not in redirect_uri:
            return oauth_error("invalid_request", "redirect_uri does not match the registered Redirect Uri.")
        if params.get("response_type") != "code":
            return oauth_error("unsupported_response_type", "Only response_type=code is supported.")
        with emulator.store.lock:
            code = emulator.store.oauth.new_code(client["client_id"], redirect_uri)
        extra = {k: v for k, v in params.items() if k not in ("response_type", "client_id", "redirect_uri")}
        parts = urlsplit(redirect_uri)
        query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items()) + [("code", code)]
        return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), status_code=302)

    @app.post("/api/oauth2/oauth2/token")
    async def token(request: Request):
        emulator.calls.add("POST token")
        fault = await emulator.faults.before("POST token", expire=emulator.expire_tokens)
        if fault is not None:
            return fault
        if not api_key_ok(emulator, request):
            return oauth_error("invalid_client", "The API key is missing or unknown.", 401)
        form = dict(await request.form())
        credentials = _client_credentials(emulator, request, form)
        if isinstance(credentials, JSONResponse):
            return credentials
        client_id, secret = credentials
        oauth = emulator.store.oauth
        with emulator.store.lock:
            if not oauth.client_ok(client_id, secret):
                return oauth_error("invalid_client", "Client authentication failed.")
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                code = oauth.codes.get(str(form.get("code", "")))
                if code is None or code["used"] or code["client_id"] != client_id:
                    return oauth_error("invalid_grant", "The authorization code is invalid or was used.")
                if form.get("redirect_uri") != code["redirect_uri"]:
                    return oauth_error(
                        "invalid_grant", "redirect_uri differs from the authorization request."
                    )
                code["used"] = True
                body = oauth.issue(client_id)
            elif grant_type == "refresh_token":
                grant = oauth.refresh.get(str(form.get("refresh_token", "")))
                if grant is None or grant["status"] != "active" or grant["client_id"] != client_id:
                    return oauth_error(
                        "invalid_grant", "The refresh token is invalid, expired, used or revoked."
                    )
                grant["status"] = "used"
                oauth.refresh_count += 1
                body = oauth.issue(client_id)
            else:
                return oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")
        emulator.faults.drop_after_commit(request, "POST token")
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
