#!/usr/bin/env bash
# Entrypoint of the PostgreSQL stand-in: on an empty data directory, initdb with POSTGRES_USER /
# POSTGRES_PASSWORD, network logins by password, and POSTGRES_DB; then the command as postgres.
set -euo pipefail

if [[ "$(id -u)" == "0" ]]; then
    mkdir -p "${PGDATA}" /var/run/postgresql
    chown -R postgres:postgres "${PGDATA}" /var/run/postgresql
    chmod 700 "${PGDATA}"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [[ "${1:-}" == "postgres" && ! -s "${PGDATA}/PG_VERSION" ]]; then
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    user="${POSTGRES_USER:-postgres}"
    database="${POSTGRES_DB:-${user}}"
    pwfile="$(mktemp)"
    printf '%s' "${POSTGRES_PASSWORD}" >"${pwfile}"
    initdb --username="${user}" --pwfile="${pwfile}" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 -D "${PGDATA}"
    rm -f "${pwfile}"
    echo "host all all all scram-sha-256" >>"${PGDATA}/pg_hba.conf"
    echo "listen_addresses = '*'" >>"${PGDATA}/postgresql.conf"
    if [[ "${database}" != "postgres" ]]; then
        pg_ctl -D "${PGDATA}" -o "-c listen_addresses=''" -w start
        psql -v ON_ERROR_STOP=1 --username="${user}" --dbname=postgres \
            -c "CREATE DATABASE \"${database}\""
        pg_ctl -D "${PGDATA}" -m fast -w stop
    fi
fi

exec "$@"
