"""King Finance <-> QicsMilestones: three DAGs per administration in include/administrations.yaml.

Parsing reads only that file (relative to this one): no network, no database, no connections.
A broken entry becomes one import error naming the administration and the field, while the
other administrations' DAGs load as usual.
"""

from pathlib import Path

from king_qics.config import load_administrations
from king_qics.dag_factory import build_dags, config_error_dag

CONFIG_PATH = Path(__file__).resolve().parent.parent / "include" / "administrations.yaml"

_config = load_administrations(CONFIG_PATH)
for _adm in _config.administrations:
    if _adm.enabled:
        for _dag in build_dags(_adm, str(CONFIG_PATH)):
            globals()[_dag.dag_id] = _dag
if _config.errors:
    _broken = config_error_dag(CONFIG_PATH, _config.errors)
    globals()[_broken.dag_id] = _broken
