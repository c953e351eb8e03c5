"""The King <-> Qics plugin is light to load: every Airflow component (workers and the DAG processor
too) imports it, so importing it must not pull in the web stack or the database layer, nor touch
the network. Airflow registers it once, from its plugins folder (plugins/king_qics_plugin.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

IMPORT_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys

    def forbidden(*args, **kwargs):
        raise RuntimeError("loading the plugin must not use the network")

    socket.socket.connect = forbidden
    socket.create_connection = forbidden
    import airflow.sdk.plugins_manager  # what a worker has loaded before it loads plugins
    before = set(sys.modules)
    from king_qics.ui.plugin import KingQicsPlugin
    heavy = sorted(
        {m.split(".")[0] for m in set(sys.modules) - before}
        & {"fastapi", "starlette", "jinja2", "sqlalchemy", "pandas", "requests", "yaml"}
    )
    print(json.dumps({"heavy": heavy, "views": KingQicsPlugin.external_views}))
    """
)


def test_importing_the_plugin_is_light_and_offline():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["heavy"] == []
    assert loaded["views"] == [
        {
            "name": "King <-> Qics",
            "href": "/king-qics/",
            "destination": "nav",
            "url_route": "king-qics",
            "category": "browse",
        }
    ]


# What every Airflow component does at start: load the plugins (plugins folder, entry points).
REGISTRATION_SCRIPT = textwrap.dedent(
    """
    import json
    from airflow import plugins_manager

    names = [plugin["name"] for plugin in plugins_manager.get_plugin_info()]
    print(json.dumps({"plugins": names, "errors": plugins_manager.get_import_errors()}))
    """
)


def test_airflow_registers_the_plugin_once_without_an_import_error():
    """As an Airflow component sees it (the tests' plugins folder is the repository's plugins/, as
    in the demo and the compose stack): one plugin, no "Plugin 'king_qics' already registered"."""
    result = subprocess.run(
        [sys.executable, "-c", REGISTRATION_SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"plugins": ["king_qics"], "errors": {}}, result.stderr[-2000:]
    assert "already registered" not in result.stderr


def test_not_also_an_entry_point():
    """The editable install leaves the package's metadata in plugins/ too (on sys.path), so Airflow
    would load an ``airflow.plugins`` entry point a second time: the plugins folder registers it."""
    assert not [ep for ep in entry_points(group="airflow.plugins") if ep.value.startswith("king_qics")]


def test_every_ledger_state_has_its_bookkeeper_words():
    """One place says what each state of the invoice export ledger means (the page, the logs)."""
    from king_qics.ledger_words import LEDGER_STATE_WORDS, ledger_state_words
    from king_qics.state import EXPORT_DONE_STATES, EXPORT_OPEN_STATES

    assert list(LEDGER_STATE_WORDS) == [*EXPORT_OPEN_STATES, *EXPORT_DONE_STATES]
    assert ledger_state_words("booking_sent") == "booking sent, confirming"
    assert len(set(LEDGER_STATE_WORDS.values())) == len(LEDGER_STATE_WORDS)
