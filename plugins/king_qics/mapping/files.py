"""Where the mappings' data files are: shipped in the package (``mapping/data/``, found through
importlib.resources, so an installed wheel has them), each overridable by a file of the same name
in ``include/mappings/`` (catalog.include_dir): an entity's YAML, ``countries.yaml``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from king_qics import catalog


def data_file(name: str, override_dir: str | Path | None = None) -> Path:
    """The file to read: ``override_dir`` (default ``include/mappings/``) when it holds ``name``,
    else the package's own."""
    folder = Path(override_dir) if override_dir is not None else catalog.include_dir() / "mappings"
    if (folder / name).is_file():
        return folder / name
    return Path(str(files("king_qics.mapping").joinpath("data", name)))
