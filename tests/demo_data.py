"""The demo fixture (sandbox/fixtures/demo.json) as tests load it into the sandboxes."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "sandbox" / "fixtures"
DEMO = FIXTURES / "demo.json"


def load_fixture(path: Path = DEMO) -> dict:
    """A fixture file as ``Sandboxes.load`` takes it (files are resolved relative to it)."""
    fixture = json.loads(path.read_text(encoding="utf-8"))
    fixture["_base_dir"] = str(path.resolve().parent)
    return fixture


def qics_only_fixture() -> dict:
    """The demo fixture with only its Qics section (King left empty)."""
    return {"king": {}, "qics": load_fixture()["qics"], "_base_dir": str(FIXTURES)}
