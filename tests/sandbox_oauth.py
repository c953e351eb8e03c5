"""The Qics emulator's OAuth flows as a person or a test goes through them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from sandbox import universe
from sandbox.qics.profile import API_KEY

TOKEN = "/api/oauth2/oauth2/token"


def new_refresh_token(sb) -> str:
    """What a person does in QicsMilestones to (re-)authorize the sync: a refresh token of its own from
    the authorization-code flow, the client authenticated as the emulator's current profile wants."""
    profile = sb.admin("qics", "GET", "profile")
    redirect = sb.qics_url + "/api/oauth2/oauth2/auth"
    params = {
        "response_type": "code",
        "client_id": universe.QICS_CLIENT_ID,
        "redirect_uri": universe.QICS_REDIRECT_URI,
    }
    location = requests.get(redirect, params=params, allow_redirects=False, timeout=10).headers["Location"]
    data = {"grant_type": "authorization_code", "code": parse_qs(urlsplit(location).query)["code"][0]}
    data["redirect_uri"] = universe.QICS_REDIRECT_URI
    client = (universe.QICS_CLIENT_ID, universe.QICS_CLIENT_SECRET)
    headers = {profile["api_key_header"]: API_KEY} if profile["api_key_header"] else {}
    if profile["client_auth"] == "basic":
        response = requests.post(sb.qics_url + TOKEN, data=data, auth=client, headers=headers, timeout=10)
    else:
        data.update(client_id=client[0], client_secret=client[1])
        response = requests.post(sb.qics_url + TOKEN, data=data, headers=headers, timeout=10)
    return response.json()["refresh_token"]
