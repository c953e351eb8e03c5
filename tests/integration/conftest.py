"""Fixtures of the over-HTTP invoice tests (see invoice_env.py for the helpers)."""

from __future__ import annotations

import pytest

from king_qics.hooks.qics.oauth import clear_process_cache
from king_qics.state import StateStore
from tests.integration.invoice_env import use_sandbox_connections
from tests.integration.king_wire import KING_DEMO


@pytest.fixture
def env(sandbox, monkeypatch, tmp_path):
    """Demo data loaded; connections king_noord/qics_sandbox at the sandboxes; a fresh state store."""
    use_sandbox_connections(sandbox, monkeypatch)
    clear_process_cache()
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    store.create_schema()
    sandbox.store = store
    return sandbox


@pytest.fixture
def king(sandboxes):
    """Only the King demo data loaded (Qics empty), every fault off, the default King profile."""
    sandboxes.load({"king": KING_DEMO, "qics": {}})
    return sandboxes
