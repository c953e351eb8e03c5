"""Loading the mapping specs: ``load_mapping(entity)`` reads ``<entity>.yaml`` (the package's, or
its override in include/mappings/: mapping.files), validates it, and caches it per file."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from king_qics.catalog import ENTITY_NAMES
from king_qics.mapping.files import data_file
from king_qics.mapping.names import MappingError
from king_qics.mapping.spec import EntityMapping


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. (YAML 1.1 would read a key `on:` or a value `NO` as a bool.)"""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_mapping(entity_name: str, mappings_dir: str | Path | None = None) -> EntityMapping:
    """Read and validate ``<entity_name>.yaml`` from ``mappings_dir``, else the override folder or the
    package (mapping.files); cached per file and modification time."""
    path = data_file(f"{entity_name}.yaml", mappings_dir)
    return _load(path.resolve(), path.stat().st_mtime_ns if path.exists() else 0)


@cache
def _load(path: Path, _mtime: int) -> EntityMapping:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader)
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc.strerror or exc}") from exc
    try:
        mapping = EntityMapping.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise MappingError(f"invalid mapping {path.name}: {details}") from exc
    if mapping.entity != path.stem:
        raise MappingError(f"invalid mapping {path.name}: entity {mapping.entity!r} must match the file name")
    return mapping


def load_all(mappings_dir: str | Path | None = None) -> dict[str, EntityMapping]:
    return {name: load_mapping(name, mappings_dir) for name in ENTITY_NAMES}
