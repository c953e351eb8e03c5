"""The alert state (king_qics.state.alerts): a condition is told once by one caller, resolved once,
a changed event is told again, and the once-a-day claim holds per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from king_qics.state import StateStore
from king_qics.state.alerts import AlertState

T0 = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
def state(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.create_schema()
    return AlertState(store, "noord")


def test_a_condition_is_opened_once_and_resolved_once(state):
    assert state.open("stalled", "noord: stalled", T0) is True
    assert state.open("stalled", "noord: stalled", T0 + timedelta(minutes=10)) is False
    assert set(state.holding()) == {"stalled"}
    row = state.resolve("stalled", T0 + timedelta(minutes=20))
    assert row is not None and row.summary == "noord: stalled"
    assert state.resolve("stalled", T0 + timedelta(minutes=30)) is None
    assert state.holding() == {}
    assert state.open("stalled", "noord: stalled again", T0 + timedelta(hours=1)) is True  # holds anew


def test_an_event_is_told_again_only_when_it_changed_or_after_it_cleared(state):
    assert state.tell("task:master_data:customers", "a") is True
    assert state.tell("task:master_data:customers", "a") is False
    assert state.tell("task:master_data:customers", "b") is True
    state.clear("task:master_data:customers")
    assert state.tell("task:master_data:customers", "b") is True


def test_an_unsent_opening_is_undone(state):
    assert state.open("invoices_waiting", "2 invoices", T0)
    state.undo_open("invoices_waiting", T0)
    assert state.open("invoices_waiting", "2 invoices", T0 + timedelta(minutes=10)) is True


def test_the_digest_is_claimed_once_per_day(state):
    today = T0
    assert state.claim_once("digest", today, T0 + timedelta(minutes=5)) is True
    assert state.claim_once("digest", today, T0 + timedelta(minutes=15)) is False
    tomorrow = today + timedelta(days=1)
    assert state.claim_once("digest", tomorrow, tomorrow + timedelta(minutes=5)) is True


def test_when_the_export_last_ran_through(state):
    assert state.last_ran_through("invoice_export") is None
    state.ran_through("invoice_export", T0)
    state.ran_through("invoice_export", T0 + timedelta(minutes=15))
    assert state.last_ran_through("invoice_export") == T0 + timedelta(minutes=15)
