"""The go-live preflight: before an administration's first real run, check every guess the sync
makes about the real King and Qics services (the wire profiles and the behaviour rows of docs/sandboxes.md)
against them, read-only unless a write probe is asked for.

One row per check: ``ok``, ``differs: <what we sent or expected> vs <what came back>`` or
``unknown``, naming the profile setting or behaviour row it verifies. A check whose failure would
stop the sync is *blocking*; any blocking row that is not ``ok`` makes the preflight fail.

Run it as the manual DAG ``king_qics__preflight`` or as ``python -m king_qics.preflight``.
"""

from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass

log = logging.getLogger(__name__)

OK, DIFFERS, UNKNOWN = "ok", "differs", "unknown"


@dataclass(frozen=True)
class Check:
    api: str  # King or Qics
    name: str
    result: str  # ok | differs | unknown
    detail: str  # what was seen (for differs: "<sent or expected> vs <what came back>")
    verifies: str  # the profile setting, config key or behaviour row (docs/sandboxes.md) it checks
    blocking: bool = True  # a failure would stop the sync

    @property
    def line(self) -> str:
        return self.result if self.result != DIFFERS else f"differs: {self.detail}"


def ok(api: str, name: str, detail: str, verifies: str, blocking: bool = True) -> Check:
    return Check(api, name, OK, detail, verifies, blocking)


def differs(api: str, name: str, detail: str, verifies: str, blocking: bool = True) -> Check:
    return Check(api, name, DIFFERS, detail, verifies, blocking)


def unknown(api: str, name: str, detail: str, verifies: str) -> Check:
    return Check(api, name, UNKNOWN, detail, verifies, blocking=False)


def failed(checks: list[Check]) -> list[Check]:
    """The blocking checks that are not ok: the sync would stop on them."""
    return [check for check in checks if check.blocking and check.result != OK]


def table(checks: list[Check], width: int = 100) -> str:
    """The checks as a table a person reads in a log or a terminal (long details wrapped)."""
    rows = [("api", "check", "result", "verifies")]
    rows += [(c.api, c.name, _result(c), c.verifies) for c in checks]
    widths = [max(len(r[i].split("\n")[0]) for r in rows) for i in (0, 1)]
    lines = []
    for api, name, result, verifies in rows:
        lead = f"{api.ljust(widths[0])}  {name.ljust(widths[1])}  "
        wrapped = textwrap.wrap(result, max(30, width - len(lead))) or [""]
        lines.append(lead + wrapped[0])
        lines += [" " * len(lead) + more for more in wrapped[1:]]
        lines.append(" " * len(lead) + f"({verifies})" if api != "api" else " " * len(lead) + verifies)
    return "\n".join(lines)


def _result(check: Check) -> str:
    if check.result == OK:
        return f"ok: {check.detail}" if check.detail else "ok"
    if check.result == UNKNOWN:
        return f"unknown: {check.detail}"
    return f"differs: {check.detail}" + ("" if check.blocking else " (not blocking)")
