"""Text for task logs that a person reads: paragraphs and key/reason tables that fit a normal log
width (``LOG_WIDTH`` characters; long reasons wrap under their own column)."""

from __future__ import annotations

import textwrap

LOG_WIDTH = 100
MIN_REASON_WIDTH = 40


def paragraph(text: str, width: int = LOG_WIDTH) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False, break_long_words=True))


def reason_table(
    rows: dict[str, str], key: str = "key", reason: str = "reason", width: int = LOG_WIDTH
) -> str:
    """``key  reason`` per row, sorted by key, reasons wrapped to fit ``width``."""
    key_width = max([len(key), *(len(str(name)) for name in rows)])
    reason_width = max(MIN_REASON_WIDTH, width - key_width - 2)
    indent = " " * (key_width + 2)
    lines = [f"{key.ljust(key_width)}  {reason}", f"{'-' * key_width}  {'-' * len(reason)}"]
    for name, text in sorted(rows.items(), key=lambda item: str(item[0])):
        wrapped = textwrap.wrap(str(text), width=reason_width, break_on_hyphens=False) or [""]
        lines.append(f"{str(name).ljust(key_width)}  {wrapped[0]}")
        lines += [f"{indent}{more}" for more in wrapped[1:]]
    return "\n".join(lines)
