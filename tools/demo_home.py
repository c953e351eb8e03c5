"""The demo's Airflow home: its settings (in airflow.cfg and the environment alike), connections
to the sandboxes, pools, and the fresh start (tools/demo.py, tools/sync_once.py, the e2e tests)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from king_qics.catalog import CONFIG_NAME  # noqa: E402
from sandbox import universe  # noqa: E402
from sandbox.server import free_port  # noqa: E402

AIRFLOW_PORT = 8080
KEPT_ON_RESET = ("passwords.json",)  # the login survives a fresh start


def airflow_settings(home: Path, port: int = AIRFLOW_PORT) -> dict[str, dict[str, str]]:
    """The demo's Airflow settings, section -> key -> value: in airflow.cfg and the environment."""
    return {
        "core": {
            "dags_folder": str(ROOT / "dags"),
            "plugins_folder": str(ROOT / "plugins"),
            "load_examples": "False",
            "dags_are_paused_at_creation": "False",
            "executor": "LocalExecutor",
            # tasks are bounded by the pools (one per administration and API); a worker process per
            # slot, so the default of 32 only costs memory
            "parallelism": "8",
            "simple_auth_manager_passwords_file": str(home / "passwords.json"),
        },
        "database": {"sql_alchemy_conn": f"sqlite:///{home / 'airflow.db'}"},
        "api": {"port": str(port), "base_url": f"http://localhost:{port}"},
    }


def airflow_env(home: Path, port: int = AIRFLOW_PORT, **overrides: str) -> dict[str, str]:
    """Environment of every Airflow command of the embedded setup (the same settings as airflow.cfg)."""
    env = dict(os.environ)
    env["AIRFLOW_HOME"] = str(home)
    for section, values in airflow_settings(home, port).items():
        for key, value in values.items():
            env[f"AIRFLOW__{section.upper()}__{key.upper()}"] = value
    # standalone starts its components as `airflow ...`: the venv's own
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env.update(overrides)
    return env


def write_airflow_cfg(path: Path, settings: dict[str, dict[str, str]]) -> None:
    """Set ``settings`` in an airflow.cfg, in place: an existing ``key = value`` line of the section
    is replaced, a missing key is added at the end of its section (comments stay)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    todo = {section: dict(values) for section, values in settings.items()}
    out: list[str] = []
    section = None

    def close(name):
        """Add the section's missing keys after its last setting (before its trailing blank lines)."""
        missing = [f"{key} = {value}" for key, value in todo.pop(name, {}).items()]
        at = len(out)
        while at > 0 and not out[at - 1].strip():
            at -= 1
        out[at:at] = missing

    for line in lines:
        header = re.match(r"^\[([^\]]+)\]\s*$", line)
        if header:
            close(section)
            section = header.group(1)
        else:
            setting = re.match(r"^([A-Za-z0-9_]+)\s*=", line)
            if setting and section in todo and setting.group(1) in todo[section]:
                line = f"{setting.group(1)} = {todo[section].pop(setting.group(1))}"
        out.append(line)
    close(section)
    for name in list(todo):
        out += ["", f"[{name}]"]
        close(name)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def sandbox_connections(king_url: str, qics_url: str) -> dict[str, dict]:
    """Airflow connections of the demo, pointing at the sandboxes: one King connection per
    administration (its environment code) and one Qics connection for the Qics environment."""
    connections = {}
    for adm in universe.ADMINISTRATIONS:
        connections[f"king_{adm['id']}"] = {
            "conn_type": "king_finance",
            "description": f"King Finance sandbox, administration {adm['adm_number']}",
            "host": king_url,
            "extra": json.dumps(
                {"partner_key": universe.KING_TEST_PARTNER_KEY, "environment_code": adm["environment_code"]}
            ),
        }
    connections["qics_sandbox"] = {
        "conn_type": "qics_milestones",
        "description": "QicsMilestones sandbox (all demo companies)",
        "host": qics_url,
        "extra": json.dumps(
            {
                "client_id": universe.QICS_CLIENT_ID,
                "client_secret": universe.QICS_CLIENT_SECRET,
                "refresh_token": universe.QICS_INITIAL_REFRESH_TOKEN,
            }
        ),
    }
    return connections


def administrations():
    from king_qics.config import load_administrations

    return load_administrations(ROOT / "include" / CONFIG_NAME).administrations


def demo_pools() -> dict[str, dict]:
    """The pools of every configured administration (``airflow pools import`` format), sized by
    the ``pools`` setting of each entry in include/administrations.yaml."""
    from king_qics.dag_factory import pool_name

    pools = {}
    for adm in administrations():
        for api, slots in (("king", adm.pools.king), ("qics", adm.pools.qics)):
            pools[pool_name(adm, api)] = {"slots": slots, "description": f"{api} API calls of {adm.name}"}
    return pools


def reset_home(home: Path) -> bool:
    """Empty the Airflow home but for the login; True when there was something to remove."""
    removed = False
    for entry in home.iterdir() if home.exists() else ():
        if entry.name in KEPT_ON_RESET:
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        removed = True
    return removed


def prepare_airflow_home(
    home: Path, king_url: str, qics_url: str, port: int = AIRFLOW_PORT
) -> dict[str, str]:
    """Metadata DB, airflow.cfg with the demo's settings, connections to the sandboxes, pools."""
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, port)
    airflow = [str(Path(sys.executable).parent / "airflow")]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    settings = airflow_settings(home, port)
    # fixed default ports (8793/8794) would clash with any other Airflow on this machine
    settings["logging"] = {
        "worker_log_server_port": str(free_port()),
        "trigger_log_server_port": str(free_port()),
    }
    write_airflow_cfg(home / "airflow.cfg", settings)  # `db migrate` wrote Airflow's defaults
    env.update({f"AIRFLOW__LOGGING__{key.upper()}": value for key, value in settings["logging"].items()})
    (home / "connections.json").write_text(json.dumps(sandbox_connections(king_url, qics_url), indent=2))
    (home / "pools.json").write_text(json.dumps(demo_pools(), indent=2))
    subprocess.run(
        [*airflow, "connections", "import", "--overwrite", str(home / "connections.json")],
        env=env,
        check=True,
    )
    subprocess.run([*airflow, "pools", "import", str(home / "pools.json")], env=env, check=True)
    return env
