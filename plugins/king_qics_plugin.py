"""The one registration of the King <-> Qics page: Airflow imports every .py file of its plugins
folder and registers the AirflowPlugin classes it finds (plugins/.airflowignore keeps it out of the
package itself). The demo, the tests and the compose stack all use this folder as Airflow's plugins
folder.

Not also an ``airflow.plugins`` entry point: the package's editable install leaves its metadata in
plugins/king_qics_sync.egg-info, on sys.path beside the installed copy, and Airflow loads an entry
point once per copy ("Plugin 'king_qics' already registered", a red "1 Plugin Import Error").
"""

from king_qics.ui.plugin import KingQicsPlugin

__all__ = ["KingQicsPlugin"]
