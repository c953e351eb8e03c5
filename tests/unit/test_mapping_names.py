"""mapping/names.py (what a mapping file may name, pandas-free) and transforms.py (what implements
it) say the same: every name has its implementation, every implementation its name."""

from __future__ import annotations

from king_qics.mapping import names, transforms


def test_every_transform_and_rule_named_is_implemented_and_nothing_else():
    assert set(transforms.TRANSFORMS) == names.TRANSFORM_NAMES
    assert names.TRANSFORMS_WITH_ARGUMENT <= names.TRANSFORM_NAMES
    assert names.MULTI_COLUMN_TRANSFORMS <= names.TRANSFORM_NAMES
    assert {name: fields for name, (fields, _) in transforms.RULES.items()} == names.RULE_FIELDS
