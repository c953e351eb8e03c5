"""The declarative mappings King -> Qics: specs (``spec``) loaded from YAML (``loading``; the files:
``files``, shipped in ``data/``), applied column-wise to a King DataFrame (``apply``) with the named
transforms and rules (``transforms``; their names: ``names``) and column helpers (``columns``);
canonical values and record hashes (``values``). docs/mapping.md describes the format.

Loading a mapping imports no pandas (the idle gate only reads a mapping's table, fields and key);
the names of the engine below are imported when first used."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from king_qics.mapping.loading import load_all, load_mapping
from king_qics.mapping.names import MappingError
from king_qics.mapping.spec import EntityMapping, FieldSpec, LookupSpec, ValueSpec

if TYPE_CHECKING:
    from king_qics.mapping.apply import MappingResult
    from king_qics.mapping.values import canonical_value, record_hash, record_hashes

_ENGINE = {
    "MappingResult": "king_qics.mapping.apply",
    "canonical_value": "king_qics.mapping.values",
    "record_hash": "king_qics.mapping.values",
    "record_hashes": "king_qics.mapping.values",
}


def __getattr__(name: str):
    if name in _ENGINE:
        return getattr(import_module(_ENGINE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EntityMapping",
    "FieldSpec",
    "LookupSpec",
    "MappingError",
    "MappingResult",
    "ValueSpec",
    "canonical_value",
    "load_all",
    "load_mapping",
    "record_hash",
    "record_hashes",
]
