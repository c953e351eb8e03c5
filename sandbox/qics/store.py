"""In-memory data of the Qics emulator: entity records, invoice PDFs and the OAuth2 grants."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from sandbox import universe
from sandbox.qics.odata import BadValue, ODataError, coerce, to_json
from sandbox.qics.schema import ENUMS, SETS, EntitySet

DEFAULT_ACCESS_TOKEN_TTL = 3600
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class OAuthState:
    """Clients, one-time authorization codes, rotating refresh tokens and expiring access tokens."""

    def __init__(self, clients: list[dict], ttl: float):
        self.clients = {c["client_id"]: dict(c) for c in clients}
        self.ttl = ttl
        self.codes: dict[str, dict] = {}
        self.refresh: dict[str, dict] = {}  # token -> {client_id, status: active|used|revoked}
        self.access: dict[str, dict] = {}  # token -> {client_id, expires_at}
        self.refresh_count = 0
        for client in clients:
            if client.get("refresh_token"):
                self.refresh[client["refresh_token"]] = {"client_id": client["client_id"], "status": "active"}

    def client_ok(self, client_id: str | None, secret: str | None) -> bool:
        client = self.clients.get(client_id or "")
        return client is not None and secrets.compare_digest(str(client["client_secret"]), str(secret or ""))

    def new_code(self, client_id: str, redirect_uri: str) -> str:
        code = "code-" + secrets.token_urlsafe(16)
        self.codes[code] = {"client_id": client_id, "redirect_uri": redirect_uri, "used": False}
        return code

    def issue(self, client_id: str) -> dict:
        access, refresh = "at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(24)
        self.access[access] = {"client_id": client_id, "expires_at": time.time() + self.ttl}
        self.refresh[refresh] = {"client_id": client_id, "status": "active"}
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.ttl),
            "refresh_token": refresh,
        }

    def access_ok(self, token: str) -> bool:
        grant = self.access.get(token)
        return grant is not None and grant["expires_at"] > time.time()

    def expire_access(self) -> None:
        for grant in self.access.values():
            grant["expires_at"] = 0.0

    def revoke_refresh(self) -> None:
        for grant in self.refresh.values():
            if grant["status"] == "active":
                grant["status"] = "revoked"

    def state(self) -> dict:
        now = time.time()
        return {
            "clients": [
                {"client_id": c["client_id"], "redirect_uri": c.get("redirect_uri")}
                for c in self.clients.values()
            ],
            "access_token_ttl_seconds": self.ttl,
            "refresh_grants": self.refresh_count,
            "refresh_tokens": [{"token": t, **g} for t, g in self.refresh.items()],
            "active_access_tokens": sum(1 for g in self.access.values() if g["expires_at"] > now),
            "access_tokens": list(self.access),
        }


class QicsStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.load({})

    # -- loading -------------------------------------------------------------------------------

    def load(self, section: dict) -> None:
        if "generate" in section:
            from sandbox.qics.generate import generate_section

            section = generate_section(
                int(section["generate"]),
                int(section.get("seed", 1)),
                invoices=int(section.get("invoices", 0)),
            )
        base_dir = Path(section.get("_base_dir") or Path(__file__).resolve().parents[1] / "fixtures")
        clients = section.get("clients") or [
            {
                "client_id": universe.QICS_CLIENT_ID,
                "client_secret": universe.QICS_CLIENT_SECRET,
                "refresh_token": universe.QICS_INITIAL_REFRESH_TOKEN,
                "redirect_uri": universe.QICS_REDIRECT_URI,
            }
        ]
        with self.lock:
            self.oauth = OAuthState(
                clients, float(section.get("access_token_ttl_seconds", DEFAULT_ACCESS_TOKEN_TTL))
            )
            self.page_size = int(section.get("page_size", DEFAULT_PAGE_SIZE))
            self.data: dict[str, dict[int, dict]] = {name: {} for name in SETS}
            self.next_id: dict[str, int] = {name: 1 for name in SETS}
            self.next_global = {"CustomerId": 1, "ItemId": 1, "EmployeeId": 1}
            # (set, field, CompanyId, value) -> keys: unique codes checked without a scan per write
            self.codes: dict[tuple, set[int]] = {}
            entities = section.get("entities", {})
            unknown = set(entities) - set(SETS)
            if unknown:
                raise ValueError(f"unknown entity sets in fixture: {sorted(unknown)}")
            for name in SETS:  # in dependency order
                for raw in entities.get(name, []):
                    self._load_record(SETS[name], raw)
            self.pdfs: dict[int, bytes] = {}
            for key, value in (section.get("invoice_pdfs") or {}).items():
                self.pdfs[int(key)] = value if isinstance(value, bytes) else (base_dir / value).read_bytes()

    def _load_record(self, entity: EntitySet, raw: dict) -> None:
        record = {}
        for name, kind in entity.fields.items():
            try:
                record[name] = coerce(kind, raw.get(name))
            except BadValue as exc:
                raise ValueError(f"fixture {entity.name}.{name}: {exc}") from None
        if set(raw) - set(entity.fields):
            raise ValueError(f"fixture {entity.name}: unknown fields {sorted(set(raw) - set(entity.fields))}")
        key = record.get(entity.key) or self.next_id[entity.name]
        record[entity.key] = key
        for gid in entity.server_ids:
            if record.get(gid) is None:
                record[gid] = self._new_global(gid)
            else:
                self.next_global[gid] = max(self.next_global[gid], record[gid] + 1)
        self._store(entity, key, record)
        self.next_id[entity.name] = max(self.next_id[entity.name], key + 1)

    def _store(self, entity: EntitySet, key: int, record: dict) -> None:
        """Put a record in place, keeping the index of unique codes in step."""
        previous = self.data[entity.name].get(key)
        for name in entity.unique:
            if previous is not None:
                self.codes.get(_code(entity, name, previous), set()).discard(key)
            if record.get(name) not in (None, ""):
                self.codes.setdefault(_code(entity, name, record), set()).add(key)
        self.data[entity.name][key] = record

    def _new_global(self, name: str) -> int:
        value = self.next_global[name]
        self.next_global[name] += 1
        return value

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict:
        with self.lock:
            return {
                "oauth": self.oauth.state(),
                "page_size": self.page_size,
                "entities": {
                    name: [to_json(SETS[name], r) for _, r in sorted(records.items())]
                    for name, records in self.data.items()
                },
                "invoice_pdfs": {
                    str(k): {"size": len(v), "sha256": hashlib.sha256(v).hexdigest()}
                    for k, v in sorted(self.pdfs.items())
                },
            }

    def delete_by_hand(self, name: str, key: int) -> bool:
        with self.lock:
            record = self.data[name].pop(key, None)
            if record is not None:
                for field in SETS[name].unique:
                    self.codes.get(_code(SETS[name], field, record), set()).discard(key)
            return record is not None

    # -- records -------------------------------------------------------------------------------

    def get(self, entity: EntitySet, key: int) -> dict:
        record = self.data[entity.name].get(key)
        if record is None:
            raise ODataError(404, "NotFound", f"{entity.name} with key {key} does not exist.")
        return record

    def validate(self, entity: EntitySet, body: Any, key: int | None = None) -> dict:
        """The stored form of a POST/PUT body; raises ODataError(400) listing every problem."""
        if not isinstance(body, dict):
            raise ODataError(400, "InvalidRequest", f"The request body must be a {entity.name} JSON object.")
        details: list[dict] = []
        record: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name not in entity.fields:
                details.append(
                    {
                        "target": name,
                        "message": f"The property '{name}' does not exist on type "
                        f"'QicsUnity.Api.Areas.V3.Models.{entity.name}'.",
                    }
                )
                continue
            if name == entity.key or name in entity.read_only:
                continue
            try:
                record[name] = coerce(entity.fields[name], value)
            except BadValue as exc:
                details.append({"target": name, "message": f"The value of '{name}' is invalid: {exc}."})
        for name in sorted(entity.required):
            if record.get(name) in (None, "") and not any(d["target"] == name for d in details):
                details.append({"target": name, "message": f"The {name} field is required."})
        for name, limit in entity.max_length.items():
            value = record.get(name)
            if isinstance(value, str) and len(value) > limit:
                details.append(
                    {
                        "target": name,
                        "message": f"The field {name} must be a string with a maximum length of {limit}.",
                    }
                )
        for name, enum_type in entity.enums.items():
            values = ENUMS[enum_type]
            value = record.get(name)
            if value is not None and value not in values:
                details.append(
                    {
                        "target": name,
                        "message": f"The value '{value}' is not valid for {name}; expected one of "
                        f"{', '.join(values)}.",
                    }
                )
        for name, target in entity.foreign_keys.items():
            value = record.get(name)
            if value is not None and value not in self.data[target]:
                details.append({"target": name, "message": f"{target} with id {value} does not exist."})
        for name in entity.unique:
            value = record.get(name)
            if value in (None, ""):
                continue
            others = sorted(self.codes.get(_code(entity, name, record), set()) - {key})
            if others:
                details.append(
                    {
                        "target": name,
                        "message": f"A {entity.name} with {name} '{value}' already exists in this "
                        f"company ({entity.key} {others[0]}).",
                    }
                )
        if details:
            raise ODataError(
                400,
                "ValidationFailed",
                f"The {entity.name} is invalid: "
                + "; ".join(f"{d['target']}: {d['message']}" for d in details),
                details,
            )
        return record

    def create(self, entity: EntitySet, body: Any) -> dict:
        with self.lock:
            values = self.validate(entity, body)
            key = self.next_id[entity.name]
            self.next_id[entity.name] += 1
            record = {name: values.get(name) for name in entity.fields}
            record[entity.key] = key
            for gid in entity.server_ids:
                if record.get(gid) is None:
                    record[gid] = self._new_global(gid)
            self._store(entity, key, record)
            return record

    def replace(self, entity: EntitySet, key: int, body: Any) -> dict:
        with self.lock:
            current = self.get(entity, key)
            values = self.validate(entity, body, key)
            record = {name: values.get(name) for name in entity.fields}
            record[entity.key] = key
            for name in entity.server_ids | entity.read_only:
                if record.get(name) is None:
                    record[name] = current.get(name)
            self._store(entity, key, record)
            return record


def _code(entity: EntitySet, name: str, record: dict) -> tuple:
    return (entity.name, name, record.get("CompanyId"), record.get(name))
