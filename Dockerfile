# The image of every Airflow service in docker-compose.yaml: the official Airflow image plus the
# pinned requirements and the king-qics-sync package (its provider entry point included).
# Rebuild after changing requirements.txt or plugins/king_qics: `docker compose build`.
# AIRFLOW_BASE_IMAGE: the official image by default; `make compose-test` builds on a local stand-in
# of it (tools/standin_images.py, docs/production.md) where no registry can be reached.
ARG AIRFLOW_BASE_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_BASE_IMAGE}

COPY --chown=airflow:0 requirements.txt pyproject.toml README.md /opt/airflow/project/
COPY --chown=airflow:0 plugins/king_qics /opt/airflow/project/plugins/king_qics
RUN pip install --no-cache-dir -r /opt/airflow/project/requirements.txt \
 && pip install --no-cache-dir --no-deps /opt/airflow/project

COPY --chown=airflow:0 docker/airflow-init.sh /opt/airflow/docker/airflow-init.sh
