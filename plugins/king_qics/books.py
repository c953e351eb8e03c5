"""One configuration, one set of books: which King administration and which Qics company each
configured administration really reaches, judged by its connections (two connection ids can point at
the same books). The config itself already refuses entries that share a connection (config.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

from king_qics.errors import ConfigurationError


def _place(host: str | None) -> str:
    parts = urlsplit(str(host or "").strip())
    return f"{parts.netloc.lower()}{parts.path.rstrip('/').lower()}" if parts.netloc else str(host).lower()


def _extra(conn, name: str, conn_type: str):
    extras = conn.extra_dejson
    return extras.get(name) or extras.get(f"extra__{conn_type}__{name}")


def books_of(adm, get_connection) -> list[tuple]:
    """The books ``adm`` writes to: (King host, environment code) and (Qics host, company id)."""
    king = get_connection(adm.king_conn_id)
    qics = get_connection(adm.qics_conn_id)
    environment = str(_extra(king, "environment_code", "king_finance") or "").strip()
    return [
        ("the King administration", _place(king.host), environment),
        ("the Qics company", _place(qics.host), int(adm.qics_company_id)),
    ]


def refuse_shared_books(adm, administrations, get_connection=None) -> None:
    """Raise ConfigurationError naming both when another enabled administration reaches the same
    King administration or Qics company as ``adm`` through other connections: both would book every
    invoice. Runs before anything is posted."""
    if get_connection is None:
        from airflow.sdk import BaseHook

        get_connection = BaseHook.get_connection
    mine = books_of(adm, get_connection)
    for other in administrations:
        if other.id == adm.id or not other.enabled:
            continue
        for book in set(mine) & set(books_of(other, get_connection)):
            what, place, key = book
            label = f"environment code {key}" if what.startswith("the King") else f"company {key}"
            raise ConfigurationError(
                f"administrations {adm.id!r} and {other.id!r} both reach {what} at {place} ({label}) "
                "through different connections: every invoice would be booked twice. Nothing is posted "
                "until one of them is removed from the config or points elsewhere."
            )
