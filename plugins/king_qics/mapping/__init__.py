"""The declarative mappings King -> Qics: specs (``spec``) loaded from YAML (``loading``; the files:
``files``, shipped in ``data/``), applied column-wise to a King DataFrame (``apply``) with the named
transforms and rules (``transforms``) and column helpers (``columns``); canonical values and
record hashes (``values``). docs/mapping.md describes the format."""

from king_qics.mapping.apply import MappingError, MappingResult
from king_qics.mapping.loading import load_all, load_mapping
from king_qics.mapping.spec import EntityMapping, FieldSpec, LookupSpec, ValueSpec
from king_qics.mapping.values import canonical_value, record_hash, record_hashes

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
