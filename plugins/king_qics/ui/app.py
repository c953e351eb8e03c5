"""The FastAPI app of the King <-> Qics page, mounted by the Airflow API server (see plugin.py).

Read-only but for one thing: its trigger form (the one-click "retry now" and "accept as is" of a
failing record or invoice, ui/links.py) posts to Airflow's own REST API from the browser, and its
Qics re-authorization form (ui/qics_token.py) hands a refresh token to the state store's token
chain. Every route requires a user Airflow has authenticated (its JWT, from the Authorization
header or the UI's ``_token`` cookie) who may read DAG runs: Airflow's own ``requires_access_dag``
dependency, so the auth manager configured for Airflow decides; the re-authorization also needs
the right to edit the Qics connection, and a JSON body (a cross-site form cannot send one, so the
UI's cookie cannot be used against it). HTML is rendered on the server (Jinja2); the JSON API
under ``/api`` returns the same data.
"""

from __future__ import annotations

import json
import os
from functools import cache, partial
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from king_qics import catalog
from king_qics.config import LoadResult, load_administrations
from king_qics.ledger_words import LEDGER_STATE_WORDS
from king_qics.state import STATE_CONN_ID_ENV, StateStore
from king_qics.ui import links, qics_token, queries
from king_qics.ui.formatting import FILTERS, SERVER_ZONE
from king_qics.ui.plugin import URL_PREFIX

PAGE_LIMIT = 20  # rows of each list on an administration's page
LIST_LIMIT = 200  # rows per page of a full list
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters.update(FILTERS)
TEMPLATES.env.globals.update(ledger_words=LEDGER_STATE_WORDS, server_zone=SERVER_ZONE)


def config_path() -> Path:
    """The administrations config the DAG file reads: $KING_QICS_CONFIG, else include/ beside the
    DAGs folder (dags/king_qics.py reads ../include/administrations.yaml)."""
    from king_qics.catalog import config_path

    return config_path()


@cache
def _config(path: Path, mtime: float) -> LoadResult:
    return load_administrations(path)


def current_config() -> LoadResult:
    path = config_path()
    return _config(path, path.stat().st_mtime if path.exists() else 0.0)


@cache
def _store(conn_id: str | None) -> StateStore:
    return StateStore.from_settings(conn_id)  # creates missing tables once per process


def current_store() -> StateStore:
    """The store the tasks write to: the config's connection, else $KING_QICS_STATE_CONN_ID, else SQLite."""
    return _store(current_config().state_store_conn_id or os.environ.get(STATE_CONN_ID_ENV))


def airflow_base(request: Request) -> str:
    """Airflow's own URL prefix (links to the React UI's routes), whatever it is mounted under."""
    return request.scope.get("root_path", "").removesuffix(URL_PREFIX)


def _administration(administration_id: str):
    adm = current_config().get(administration_id)
    if adm is None:
        raise HTTPException(status_code=404, detail=f"no administration {administration_id!r} is configured")
    return adm


def overview_data() -> dict[str, Any]:
    config = current_config()
    ids = [adm.id for adm in config.administrations]
    summary = queries.overview(current_store(), ids)
    return {
        "administrations": [
            {"id": adm.id, "name": adm.name, "enabled": adm.enabled, **summary[adm.id]}
            for adm in config.administrations
        ],
        "config_errors": [str(error) for error in config.errors],
    }


def detail_data(administration_id: str) -> dict[str, Any]:
    adm = _administration(administration_id)
    detail = queries.administration_detail(current_store(), adm.id, limit=PAGE_LIMIT)
    dags = {kind: queries.dag_id(adm.id, kind) for kind in catalog.DagKind}
    return {"id": adm.id, "name": adm.name, "dags": dags, **detail}


def list_data(administration_id: str, name: str, offset: int, limit: int) -> dict[str, Any]:
    adm = _administration(administration_id)
    if name not in queries.LISTS:
        raise HTTPException(status_code=404, detail=f"no list {name!r}; known: {', '.join(queries.LISTS)}")
    return {"id": adm.id, "name": adm.name, **queries.list_page(current_store(), adm.id, name, offset, limit)}


def create_app() -> FastAPI:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails, DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from starlette.concurrency import run_in_threadpool

    from king_qics.alerts import advice
    from king_qics.alerts.task_events import connection_client

    app = FastAPI(
        title="King <-> Qics sync status",
        description="Read-only status of the King Finance <-> QicsMilestones sync (king-qics-sync).",
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))],
    )

    def render(request: Request, template: str, **context) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        return TEMPLATES.TemplateResponse(
            request,
            template,
            {
                "base": base,
                "airflow": airflow_base(request),
                "actions": partial(links.actions, base),
                **context,
            },
        )

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request):
        return render(request, "overview.html", **overview_data())

    @app.get("/administrations/{administration_id}", response_class=HTMLResponse)
    def administration_page(request: Request, administration_id: str):
        return render(request, "administration.html", adm=detail_data(administration_id))

    @app.get("/administrations/{administration_id}/lists/{name}", response_class=HTMLResponse)
    def list_view(
        request: Request,
        administration_id: str,
        name: str,
        offset: int = Query(0, ge=0),
        limit: int = Query(LIST_LIMIT, ge=1, le=1000),
    ):
        return render(request, "list.html", page=list_data(administration_id, name, offset, limit))

    @app.get("/administrations/{administration_id}/trigger", response_class=HTMLResponse)
    def trigger_page(
        request: Request, administration_id: str, dag: str = Query(...), conf: str = Query("{}")
    ):
        """The trigger form of one of the administration's DAGs, its params filled in (links.py)."""
        adm = _administration(administration_id)
        if dag == links.MAINTENANCE:
            dag_id = catalog.MAINTENANCE_DAG_ID
        elif dag in set(catalog.DagKind):
            dag_id = queries.dag_id(adm.id, dag)
        else:
            raise HTTPException(status_code=404, detail=f"no DAG kind {dag!r}")
        try:
            values = json.loads(conf)
        except ValueError:
            values = None
        if not isinstance(values, dict):
            raise HTTPException(status_code=400, detail="conf must be a JSON object")
        return render(
            request,
            "trigger.html",
            adm={"id": adm.id, "name": adm.name},
            dag_id=dag_id,
            conf=values,
            purpose=links.trigger_purpose(dag, values),
        )

    @app.get("/administrations/{administration_id}/qics-token", response_class=HTMLResponse)
    def qics_token_page(request: Request, administration_id: str):
        """The form that starts a new Qics token chain from a refresh token (ui/qics_token.py)."""
        adm = _administration(administration_id)
        users = qics_token.sharing(adm, current_config().administrations)
        return render(
            request,
            "qics_token.html",
            adm={"id": adm.id, "name": adm.name, "qics_conn_id": adm.qics_conn_id, "sharing": users},
            steps=advice.qics_reauthorize(adm.qics_conn_id, *connection_client(adm.qics_conn_id)),
        )

    @app.post("/api/administrations/{administration_id}/qics-token")
    async def qics_token_api(
        request: Request,
        administration_id: str,
        user: Any = Depends(get_user),  # noqa: B008 (FastAPI)
    ) -> dict[str, Any]:
        adm = _administration(administration_id)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise HTTPException(status_code=415, detail="send the refresh token as JSON")
        allowed = get_auth_manager().is_authorized_connection(
            method="PUT", details=ConnectionDetails(conn_id=adm.qics_conn_id), user=user
        )
        if not allowed:
            raise HTTPException(
                status_code=403, detail=f"you may not edit connection {adm.qics_conn_id} in Airflow"
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("refresh_token"), str):
            raise HTTPException(status_code=422, detail='expected {"refresh_token": "..."}')
        try:
            return await run_in_threadpool(
                qics_token.start_token_chain,
                adm,
                current_config().administrations,
                current_store(),
                body["refresh_token"],
            )
        except qics_token.RefusedToken as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.get("/api/administrations")
    def overview_api() -> dict[str, Any]:
        return overview_data()

    @app.get("/api/administrations/{administration_id}")
    def administration_api(administration_id: str) -> dict[str, Any]:
        return detail_data(administration_id)

    @app.get("/api/administrations/{administration_id}/lists/{name}")
    def list_api(
        administration_id: str,
        name: str,
        offset: int = Query(0, ge=0),
        limit: int = Query(LIST_LIMIT, ge=1, le=1000),
    ) -> dict[str, Any]:
        return list_data(administration_id, name, offset, limit)

    return app
