"""king_qics.sync.diff: the decision whether a mapped record is written to Qics."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from king_qics.mapping import record_hash
from king_qics.sync.diff import (
    Action,
    bookkeeping_due,
    canonical_json,
    decide,
    describe_differences,
    field_differences,
    json_ready,
    stored_values,
)

PAYLOAD = {"Code": "21", "Percentage": Decimal("21.00"), "Name": "Hoog"}
DIGEST = record_hash(PAYLOAD)


def stored(**values):
    row = {"qics_id": 7, "record_hash": DIGEST, "last_error": None, "rejected_hash": None, "pending": None}
    row["record_json"] = canonical_json(PAYLOAD)
    return SimpleNamespace(**{**row, **values})


def test_a_record_never_synced_and_not_in_qics_is_new():
    assert (
        decide(PAYLOAD, DIGEST, stored=None, current=None, qics_id=None, retry_rejected=False) is Action.NEW
    )


def test_qics_s_own_record_decides_when_it_was_read():
    same = {"Code": "21", "Percentage": 21.0, "Name": "Hoog", "VatCodeId": 7}  # other fields: not ours
    other = {**same, "Name": "Laag"}
    decision = decide(PAYLOAD, DIGEST, stored=None, current=same, qics_id=7, retry_rejected=False)
    assert decision is Action.UNCHANGED
    # even when the hash says unchanged: Qics was changed by hand (full_refresh repairs it)
    decision = decide(PAYLOAD, DIGEST, stored=stored(), current=other, qics_id=7, retry_rejected=False)
    assert decision is Action.CHANGED


def test_without_qics_s_record_the_hash_last_written_decides():
    assert (
        decide(PAYLOAD, DIGEST, stored=stored(), current=None, qics_id=7, retry_rejected=False)
        is Action.UNCHANGED
    )
    older = stored(record_hash="0" * 64)
    assert (
        decide(PAYLOAD, DIGEST, stored=older, current=None, qics_id=7, retry_rejected=False) is Action.CHANGED
    )
    failing = stored(last_error="Qics rejected it", rejected_hash="1" * 64)  # rejected another version
    assert (
        decide(PAYLOAD, DIGEST, stored=failing, current=None, qics_id=7, retry_rejected=False)
        is Action.CHANGED
    )


def test_a_record_rejected_as_it_is_is_not_sent_again_unless_retried():
    rejected = stored(qics_id=None, last_error="Qics rejected it", rejected_hash=DIGEST)
    decision = decide(PAYLOAD, DIGEST, stored=rejected, current=None, qics_id=None, retry_rejected=False)
    assert decision is Action.STILL_REJECTED
    decision = decide(PAYLOAD, DIGEST, stored=rejected, current=None, qics_id=None, retry_rejected=True)
    assert decision is Action.NEW


def test_bookkeeping_is_due_only_when_the_state_store_row_is_behind():
    assert not bookkeeping_due(stored(), DIGEST, None)
    assert bookkeeping_due(None, DIGEST, None)
    assert bookkeeping_due(stored(pending="waits for an employee"), DIGEST, None)
    assert bookkeeping_due(stored(last_error="old"), DIGEST, None)
    assert bookkeeping_due(stored(), "0" * 64, None)


def test_differences_compare_canonical_values():
    current = {"Code": "21", "Percentage": 21, "Name": "Laag"}
    assert field_differences(PAYLOAD, current) == [("Name", "Hoog", "Laag")]
    assert describe_differences(PAYLOAD, current) == ["Name: 'Laag' -> 'Hoog'"]
    assert describe_differences(PAYLOAD, {**current, "Name": "Hoog"}) == []


def test_stored_values_and_json_ready():
    assert stored_values(None) is None and stored_values(stored(record_json=None)) is None
    assert stored_values(stored())["Name"] == "Hoog"
    for missing in (None, np.nan, pd.NA, pd.NaT):
        assert json_ready(missing) is None
    assert json_ready([1, 2]) == [1, 2] and json_ready("x") == "x"


@pytest.mark.parametrize("value", [{"a": 1}, [np.nan]])
def test_containers_are_values_not_missing(value):
    assert json_ready(value) is value
