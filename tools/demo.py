"""``make demo``: both sandboxes with the demo fixture + ``airflow standalone`` with our DAGs.

Prepares an Airflow home under ``airflow_home/`` (SQLite, LocalExecutor, our dags/ and plugins/,
DAGs unpaused), connections pointing at the sandboxes and one pool per administration and API,
then runs ``airflow standalone`` in the foreground. Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from sandbox import universe  # noqa: E402
from sandbox.server import DEFAULT_KING_PORT, DEFAULT_QICS_PORT, start_process, stop_process  # noqa: E402

AIRFLOW_PORT = 8080


def airflow_env(home: Path, **overrides: str) -> dict[str, str]:
    """Environment of every Airflow command of the embedded setup."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            # standalone starts its components as `airflow ...`: the venv's own
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update(overrides)
    return env


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


def demo_pools() -> dict[str, dict]:
    """The pools of every configured administration (``airflow pools import`` format), sized by
    the ``pools`` setting of each entry in include/administrations.yaml."""
    from king_qics.config import load_administrations
    from king_qics.dag_factory import pool_name

    pools = {}
    for adm in load_administrations(ROOT / "include" / "administrations.yaml").administrations:
        for api, slots in (("king", adm.pools.king), ("qics", adm.pools.qics)):
            pools[pool_name(adm, api)] = {"slots": slots, "description": f"{api} API calls of {adm.name}"}
    return pools


def prepare_airflow_home(home: Path, king_url: str, qics_url: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home)
    airflow = [str(Path(sys.executable).parent / "airflow")]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    (home / "connections.json").write_text(json.dumps(sandbox_connections(king_url, qics_url), indent=2))
    (home / "pools.json").write_text(json.dumps(demo_pools(), indent=2))
    subprocess.run(
        [*airflow, "connections", "import", "--overwrite", str(home / "connections.json")],
        env=env,
        check=True,
    )
    subprocess.run([*airflow, "pools", "import", str(home / "pools.json")], env=env, check=True)
    return env


def main() -> None:
    home = ROOT / "airflow_home"
    os.environ.update(airflow_env(home))  # before anything imports Airflow (it reads them once)
    king_base = f"http://127.0.0.1:{DEFAULT_KING_PORT}"
    qics_base = f"http://127.0.0.1:{DEFAULT_QICS_PORT}"
    sandbox = start_process(DEFAULT_KING_PORT, DEFAULT_QICS_PORT)
    try:
        env = prepare_airflow_home(home, f"{king_base}/v1/ws1_xml.asmx", qics_base)
        passwords = home / "passwords.json"
        if not passwords.exists():
            passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        password = json.loads(passwords.read_text())["admin"]
        print(
            f"\n  Airflow UI: http://localhost:{AIRFLOW_PORT}   login: admin / {password}\n"
            f"  King sandbox: {king_base}/v1/ws1_xml.asmx   Qics sandbox: {qics_base}/api/V3/odata/\n"
            "  Ctrl-C stops Airflow and the sandboxes.\n",
            flush=True,
        )
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "standalone"], env=env, check=False)
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(sandbox)


if __name__ == "__main__":
    main()
