"""The package as the Docker image installs it (issue 16): built as a wheel, installed non-editable
into a fresh virtual environment, away from the repository. From there the DAG file parses with
the package's own mappings and country table (package data, found through importlib.resources),
and a King record maps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    import king_qics
    from airflow.dag_processing.dagbag import DagBag
    from king_qics.config import load_administrations
    from king_qics.mapping import load_mapping
    from king_qics.mapping.files import data_file
    from king_qics.mapping.transforms import countries

    bag = DagBag(dag_folder=sys.argv[1])
    adm = load_administrations(sys.argv[2]).administrations[0]
    row = {"NR": 1, "ZKSL": "BTW1", "OMSCHR": "Btw hoog 21%", "PERC": "21", "BTWPL": "B", "GRB": 1500,
           "BLOK": "N"}
    result = load_mapping("vat_codes").apply(pd.DataFrame([row]), administration=adm, lookups={})
    print(json.dumps({
        "package": king_qics.__file__,
        "mapping_file": str(data_file("vat_codes.yaml")),
        "dags": sorted(bag.dags), "errors": bag.import_errors,
        "record": {k: str(v) for k, v in result.records.iloc[0].items()}, "mapping_errors": result.errors,
        "netherlands": countries()[1].get("NL"),
    }))
    """
)


def dependencies_without_the_project(site: Path, target: Path) -> Path:
    """The test environment's packages, linked one by one, without the editable install of this one."""
    target.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith(("king_qics", "__editable__", "_king_qics")):
            (target / entry.name).symlink_to(entry)
    return target


def test_the_wheel_parses_the_dags_and_maps_a_record_from_a_fresh_venv(tmp_path):
    source = tmp_path / "source"  # a clean copy: no egg-info of the editable install, no build/ left here
    shutil.copytree(
        ROOT / "plugins", source / "plugins", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels]
    subprocess.run([*build, source], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("king_qics_sync-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", site, wheel],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    deps = dependencies_without_the_project(Path(sys.prefix) / site.relative_to(venv), tmp_path / "deps")

    home = tmp_path / "home"  # the image's layout: the DAG file and include/ mounted, nothing else
    (home / "dags").mkdir(parents=True)
    (home / "include").mkdir()
    shutil.copy(ROOT / "dags" / "king_qics.py", home / "dags")
    shutil.copy(ROOT / "include" / "administrations.yaml", home / "include")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(deps),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    result = subprocess.run(
        [venv / "bin" / "python", "-c", SCRIPT, home / "dags", home / "include" / "administrations.yaml"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(site)), found["package"]  # the wheel's copy, not the repository
    assert found["mapping_file"].startswith(str(site)), found["mapping_file"]
    # 2 administrations x 3, maintenance, preflight, alerts
    assert found["errors"] == {} and len(found["dags"]) == 9, found
    assert found["mapping_errors"] == {}
    assert found["record"]["Code"] == "1" and found["record"]["Percentage"] == "21"
    assert found["netherlands"] == "Nederland"
