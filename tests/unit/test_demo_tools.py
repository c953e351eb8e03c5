"""The demo's pure parts: when the DAGs' window is closed (then the demo starts a first run of each
DAG), and how it writes its settings into airflow.cfg without losing Airflow's own."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from demo_home import write_airflow_cfg  # noqa: E402
from demo_runs import outside_window  # noqa: E402

from king_qics.config import load_administrations  # noqa: E402


def test_outside_the_window_in_amsterdam_time_summer_and_winter():
    adms = load_administrations(ROOT / "include" / "administrations.yaml").administrations
    assert {(adm.schedule.start, adm.schedule.end) for adm in adms} == {("07:00", "20:00")}

    def outside(*moment) -> bool:
        return bool(outside_window(adms, datetime(*moment, tzinfo=UTC)))

    # winter: Amsterdam is UTC+1
    assert outside(2026, 12, 1, 5, 59) and not outside(2026, 12, 1, 6, 0)
    assert not outside(2026, 12, 1, 19, 0) and outside(2026, 12, 1, 19, 1)
    # summer: UTC+2
    assert outside(2026, 7, 1, 4, 59) and not outside(2026, 7, 1, 5, 0)
    assert not outside(2026, 7, 1, 18, 0) and outside(2026, 7, 1, 18, 1)


def test_settings_go_into_airflow_cfg_in_place(tmp_path):
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(
        "[core]\n# The folder where your dags live\ndags_folder = /home/dags\nload_examples = True\n"
        "fernet_key = secret\n\n[database]\n# comment\nsql_alchemy_conn = sqlite:////x.db\n"
    )
    write_airflow_cfg(
        cfg,
        {
            "core": {"dags_folder": "/repo/dags", "load_examples": "False", "parallelism": "8"},
            "database": {"sql_alchemy_conn": "sqlite:////home/airflow.db"},
            "logging": {"worker_log_server_port": "41234"},
        },
    )
    assert cfg.read_text() == (
        "[core]\n# The folder where your dags live\ndags_folder = /repo/dags\nload_examples = False\n"
        "fernet_key = secret\nparallelism = 8\n\n[database]\n# comment\n"
        "sql_alchemy_conn = sqlite:////home/airflow.db\n\n[logging]\nworker_log_server_port = 41234\n"
    )
