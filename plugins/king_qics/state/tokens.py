"""The (encrypted) Qics token chain per connection: the TokenStore that king_qics.hooks.qics.oauth
keeps its chains in (the hooks never import this package; a task hands them ``store.tokens``).
Each operation is one short transaction, and none holds a lock across the token's HTTP call."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from king_qics.state.store import StateStore, _insert_ignore, _upsert, utcnow
from king_qics.state.tables import oauth_tokens


def load_oauth_token(conn: Connection, conn_id: str) -> sa.Row | None:
    """The stored token row of a connection (values still encrypted), inside the caller's transaction."""
    return conn.execute(sa.select(oauth_tokens).where(oauth_tokens.c.conn_id == conn_id)).first()


def save_oauth_token(
    conn: Connection,
    conn_id: str,
    *,
    seed_fingerprint: str,
    refresh_token: str | None,
    access_token: str | None,
    access_expires_at: datetime | None,
) -> None:
    """Store a connection's (encrypted) token chain and end its refresh, in the caller's transaction."""
    values = {
        "seed_fingerprint": seed_fingerprint,
        "refresh_token": refresh_token,
        "access_token": access_token,
        "access_expires_at": access_expires_at,
        "refreshing_by": None,
        "refreshing_since": None,
        "updated_at": utcnow(),
    }
    _upsert(conn, oauth_tokens, {"conn_id": conn_id, **values}, values)


def claim_oauth_refresh(conn: Connection, conn_id: str, fingerprint: str, me: str, lease: timedelta) -> bool:
    """Take the right to refresh a connection's tokens (no other refresh under way, or one older than
    ``lease``), in the caller's short transaction: the HTTP call itself then holds no lock."""
    now = utcnow()
    placeholder = {"conn_id": conn_id, "seed_fingerprint": fingerprint, "updated_at": now}
    conn.execute(_insert_ignore(conn, oauth_tokens, placeholder))
    t = oauth_tokens.c
    free = t.refreshing_by.is_(None) | (t.refreshing_since < now - lease)
    result = conn.execute(
        sa.update(oauth_tokens)
        .where((t.conn_id == conn_id) & free)
        .values(refreshing_by=me, refreshing_since=now, updated_at=now)
    )
    return result.rowcount == 1


def release_oauth_refresh(store: StateStore, conn_id: str, me: str) -> None:
    t = oauth_tokens.c
    with store.transaction() as conn:
        conn.execute(
            sa.update(oauth_tokens)
            .where((t.conn_id == conn_id) & (t.refreshing_by == me))
            .values(refreshing_by=None, refreshing_since=None)
        )


class TokenChains:
    """The state store as king_qics.hooks.qics.oauth's TokenStore."""

    def __init__(self, store: StateStore):
        self.store = store
        self.key = store.url

    def load(self, conn_id: str) -> sa.Row | None:
        with self.store.engine.connect() as conn:
            return load_oauth_token(conn, conn_id)

    def claim_refresh(self, conn_id: str, fingerprint: str, holder: str, lease: timedelta) -> bool:
        with self.store.transaction() as conn:
            return claim_oauth_refresh(conn, conn_id, fingerprint, holder, lease)

    def save(self, conn_id: str, **values) -> None:
        with self.store.transaction() as conn:
            save_oauth_token(conn, conn_id, **values)

    def release_refresh(self, conn_id: str, holder: str) -> None:
        release_oauth_refresh(self.store, conn_id, holder)
