"""What the alert tests share: a real SMTP server (aiosmtpd, with a login) and a webhook receiver on
free ports, the administrations config with a notifications block, and the DAGs parsed from it."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from sandbox.server import free_port

ROOT = Path(__file__).resolve().parents[2]
SMTP_LOGIN = "alerts"
SMTP_PASSWORD = "kqs-smtp-password-4d81e2"
WEBHOOK_PATH = "/services/T0KQS/B0KQS/kqs-webhook-secret-77c0"


@dataclass
class Mail:
    subject: str
    to: list[str]
    kind: str
    html: str
    raw: str


class _Inbox:
    def __init__(self):
        self.mails: list[Mail] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.content.decode("utf-8", "replace")
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(("html", "plain"))
        self.mails.append(
            Mail(
                str(parsed["Subject"]),
                list(envelope.rcpt_tos),
                str(parsed["X-King-Qics-Alert"]),
                body.get_content() if body is not None else "",
                raw,
            )
        )
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_LOGIN
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 (a free port), AUTH without TLS, keeping every message it receives."""

    def __init__(self):
        self.inbox = _Inbox()
        self.port = free_port()
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.inbox.authenticate,
            auth_require_tls=False,
        )

    @property
    def mails(self) -> list[Mail]:
        return self.inbox.mails

    def connection(self) -> dict:
        return {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.port,
            "login": SMTP_LOGIN,
            "password": SMTP_PASSWORD,
            "extra": {
                "disable_ssl": True,
                "disable_tls": True,
                "from_email": "airflow@kqs.example",
                "timeout": 10,
                "retry_limit": 0,
            },
        }


class WebhookReceiver:
    """A Slack-style incoming webhook: keeps every JSON body POSTed to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"path": self.path, "body": json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def connection(self) -> dict:
        return {"conn_type": "http", "host": f"http://127.0.0.1:{self.server.server_port}{WEBHOOK_PATH}"}


def write_config(path: Path, administrations: dict[str, dict], notifications: dict) -> Path:
    """The shipped administrations file with a notifications default and per-entry overrides."""
    data = yaml.safe_load((ROOT / "include" / "administrations.yaml").read_text(encoding="utf-8"))
    data["notifications"] = notifications
    for entry in data["administrations"]:
        entry.update(administrations.get(entry["id"], {}))
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def parse_dags(config: Path, monkeypatch) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("KING_QICS_CONFIG", str(config))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def run(dags: dict, dag_id: str, **conf):
    """dag.test() as tests/e2e/conftest.py's run_dag does, on DAGs parsed from our config."""
    dag = dags[dag_id]
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=1)
        task.max_retry_delay = timedelta(seconds=2)
    defaults = {name: param.value for name, param in dag.params.items()}
    defaults.update({name: False for name in ("full_refresh", "dry_run", "reconcile") if name in defaults})
    dag_run = dag.test(run_conf={**defaults, **conf})
    return dag_run, {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
