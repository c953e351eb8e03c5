"""The Airflow plugin of the King <-> Qics page (registered from Airflow's plugins folder by
plugins/king_qics_plugin.py).

Every Airflow component loads plugins, workers and the DAG processor too, so this module imports
nothing but the plugin base class: the API server asks for ``fastapi_apps``, and only then is the
FastAPI app (with FastAPI, Jinja2 and SQLAlchemy) built, once per process. Nothing touches the
network or a database at import time.
"""

from __future__ import annotations

from functools import cache

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/king-qics"


@cache
def _fastapi_apps() -> list[dict]:
    from king_qics.ui.app import create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "King <-> Qics sync status"}]


class KingQicsPlugin(AirflowPlugin):
    name = "king_qics"
    external_views = [
        {
            "name": "King <-> Qics",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "king-qics",
            "category": "browse",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict]:  # type: ignore[override]
        return _fastapi_apps()
