#!/usr/bin/env bash
# /entrypoint of the Airflow stand-in image: the part of the official image's entrypoint contract
# that docker-compose.yaml relies on (written for the stand-in, not a copy of the official script).
#   - the image runs with group 0; umask 0002 so files it creates stay group-writable;
#   - unless CONNECTION_CHECK_MAX_COUNT=0: waits for the metadata database (`airflow db check`,
#     CONNECTION_CHECK_MAX_COUNT tries, CONNECTION_CHECK_SLEEP_TIME seconds apart), and for
#     `scheduler` / `celery ...` with the CeleryExecutor also for the broker;
#   - _AIRFLOW_DB_MIGRATE (or the older _AIRFLOW_DB_UPGRADE) runs `airflow db migrate` first;
#   - `bash ...` and `python ...` run as they are; `airflow X ...` and plain `X ...` run `airflow X ...`.
# Not supported (the official image has them): _AIRFLOW_WWW_USER_CREATE (needs the FAB provider) and
# _PIP_ADDITIONAL_REQUIREMENTS; both stop the container with an error rather than being ignored.
set -euo pipefail

command_name="${1:-}"

if [[ "$(id -g)" != "0" ]]; then
    echo "ERROR! Run the image with GID 0 (started with UID=$(id -u) GID=$(id -g))." >&2
    exit 1
fi
umask 0002
if ! whoami >/dev/null 2>&1; then
    export HOME="${AIRFLOW_USER_HOME_DIR}"  # an arbitrary UID without a passwd entry
fi

CONNECTION_CHECK_MAX_COUNT="${CONNECTION_CHECK_MAX_COUNT:-20}"
CONNECTION_CHECK_SLEEP_TIME="${CONNECTION_CHECK_SLEEP_TIME:-3}"

with_retries() {
    local left="${CONNECTION_CHECK_MAX_COUNT}" output
    until output="$("$@" 2>&1)"; do
        left=$((left - 1))
        if ((left <= 0)); then
            echo "ERROR! '$*' failed ${CONNECTION_CHECK_MAX_COUNT} times; last output:" >&2
            echo "${output}" >&2
            exit 1
        fi
        sleep "${CONNECTION_CHECK_SLEEP_TIME}"
    done
}

broker_reachable() {
    python - "$(airflow config get-value celery broker_url)" <<'PY'
import socket
import sys
from urllib.parse import urlsplit

url = urlsplit(sys.argv[1])
default_port = {"redis": 6379, "rediss": 6379, "amqp": 5672, "pyamqp": 5672}.get(url.scheme, 6379)
socket.create_connection((url.hostname or "localhost", url.port or default_port), timeout=5).close()
PY
}

for unsupported in _AIRFLOW_WWW_USER_CREATE _PIP_ADDITIONAL_REQUIREMENTS; do
    if [[ -n "${!unsupported:-}" ]]; then
        echo "ERROR! ${unsupported} is not supported by the stand-in image (docs/production.md)." >&2
        exit 1
    fi
done

if ((CONNECTION_CHECK_MAX_COUNT > 0)); then
    with_retries airflow db check
fi
if [[ -n "${_AIRFLOW_DB_MIGRATE:-}${_AIRFLOW_DB_UPGRADE:-}" ]]; then
    airflow db migrate
fi

case "${command_name}" in
    bash) shift; exec /bin/bash "$@" ;;
    python) shift; exec python "$@" ;;
    airflow) shift ;;
esac

if [[ "${1:-}" =~ ^(scheduler|celery)$ ]] && ((CONNECTION_CHECK_MAX_COUNT > 0)) \
    && [[ "$(airflow config get-value core executor)" == "CeleryExecutor" ]]; then
    with_retries broker_reachable
fi

exec airflow "$@"
