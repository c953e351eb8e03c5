"""The King <-> Qics plugin is light to load: every Airflow component (workers and the DAG processor
too) imports it, so importing it must not pull in the web stack or the database layer, nor touch
the network. Airflow finds it through the package's ``airflow.plugins`` entry point."""

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


def test_registered_by_its_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="airflow.plugins")}
    assert plugins.get("king_qics") == "king_qics.ui.plugin:KingQicsPlugin"
