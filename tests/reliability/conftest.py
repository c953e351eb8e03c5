"""Fixtures of the reliability and security suite (see RELIABILITY.md).

The Airflow fixtures of the end-to-end tests are reused as they are (same migrated metadata DB,
pools, connections to the sandboxes, state store); ``figures`` records what a test measured in a
JSON file per part, which ``tools/reliability_figures.py`` turns into RELIABILITY.md's tables.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.e2e.conftest import airflow_db, connections, dagbag, run_dag, state_store  # noqa: F401

FIGURES_DIR = Path(
    os.environ.get("KQS_RELIABILITY_FIGURES") or Path(tempfile.gettempdir()) / "kqs-reliability"
)


@pytest.fixture
def figures():
    """``figures(part, data)``: write a part's measured figures to ``FIGURES_DIR/<part>.json`` and
    print them (visible with ``pytest -s`` and in the JUnit/console output of a failure)."""

    def record(part: str, data: dict) -> Path:
        FIGURES_DIR.mkdir(parents=True, exist_ok=True)
        path = FIGURES_DIR / f"{part}.json"
        path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
        print(f"\n{part} figures ({path}):\n{json.dumps(data, indent=1, sort_keys=True, default=str)}")
        return path

    return record
