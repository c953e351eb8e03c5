"""A message: subject, sections and links, rendered as plain text (webhooks) and as HTML (e-mail).
Every text is passed through Airflow's secrets masker before it leaves."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime

from king_qics.alerts.items import Item
from king_qics.catalog import AMSTERDAM

SUBJECT_PREFIX = "[king-qics]"


@dataclass
class Message:
    kind: str  # task_failed, credentials, credentials_resolved, stalled, stalled_resolved, ...
    administration: str
    subject: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)

    def add(self, title: str, *lines: str) -> Message:
        self.sections.append((title, [line for line in lines if line]))
        return self

    @property
    def full_subject(self) -> str:
        return redact(f"{SUBJECT_PREFIX} {self.subject}")

    def text(self) -> str:
        parts = [self.full_subject, ""]
        for title, lines in self.sections:
            parts += [f"{title}:" if title else "", *(f"  {line}" for line in lines), ""]
        parts += [f"{label}: {url}" for label, url in self.links]
        return redact("\n".join(parts).strip() + "\n")

    def html(self) -> str:
        body = [f"<h2 style='margin:0 0 12px'>{_e(self.full_subject)}</h2>"]
        for title, lines in self.sections:
            if title:
                body.append(f"<h3 style='margin:14px 0 4px'>{_e(title)}</h3>")
            if len(lines) == 1:
                body.append(f"<p style='margin:0;white-space:pre-wrap'>{_e(lines[0])}</p>")
            elif lines:
                body.append(
                    "<ul style='margin:0'>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>"
                )
        if self.links:
            body.append(
                "<p style='margin-top:16px'>"
                + " &middot; ".join(f"<a href='{_e(url)}'>{_e(label)}</a>" for label, url in self.links)
                + "</p>"
            )
        return redact(
            "<html><body style='font-family:sans-serif;font-size:14px;line-height:1.4'>"
            + "".join(body)
            + "</body></html>"
        )


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def redact(text: str) -> str:
    """Whatever this process registered as a secret (the hooks mask partner keys, environment
    codes, client secrets and tokens as they read them) becomes ***."""
    from airflow.sdk._shared.secrets_masker import redact as _redact  # the masker mask_secret fills

    return str(_redact(text))


def item_lines(items: list[Item], limit: int) -> list[str]:
    lines = [_item(item) for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"and {len(items) - limit} more (the King <-> Qics page lists them all)")
    return lines


def _item(item: Item) -> str:
    extra = []
    if item.since is not None:
        extra.append(f"since {local(item.since)}")
    if item.attempts:
        extra.append(f"{item.attempts} attempt{'' if item.attempts == 1 else 's'}")
    return f"{item.what}: {item.reason}" + (f" ({', '.join(extra)})" if extra else "")


def local(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(AMSTERDAM).strftime("%Y-%m-%d %H:%M")


def counts_line(counts: dict | None) -> str:
    if not counts:
        return "no counts (the task ended before it counted)"
    shown = {
        name: value
        for name, value in counts.items()
        if isinstance(value, int) and not isinstance(value, bool)
    }
    return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in shown.items())
