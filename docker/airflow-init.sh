#!/usr/bin/env bash
# airflow-init (docker-compose.yaml): run once before the other Airflow services, and again after
# adding an administration to include/administrations.yaml (`docker compose up airflow-init`).
#   1. migrates the metadata database,
#   2. creates the sync-state database named by $AIRFLOW_CONN_KING_QICS_STATE if it is missing,
#   3. creates/updates one pool per administration and API (sizes from include/administrations.yaml).
set -euo pipefail

airflow db migrate

python - <<'PY'
import os

import psycopg2
from sqlalchemy.engine import make_url

url = make_url(os.environ["AIRFLOW_CONN_KING_QICS_STATE"])
conn = psycopg2.connect(
    host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname="postgres"
)
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
    if cur.fetchone() is None:
        cur.execute(f'CREATE DATABASE "{url.database}"')
        print(f"created the sync-state database {url.database}")
conn.close()
PY

python - >/tmp/pools.json <<'PY'
import json
import sys

sys.path.insert(0, "/opt/airflow/tools")
from demo_home import demo_pools

print(json.dumps(demo_pools()))
PY
airflow pools import /tmp/pools.json
