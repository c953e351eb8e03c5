"""docker-compose.yaml: valid against the Compose Specification, and complete for the DAGs.

No Docker engine runs here, so this checks the file itself, against the official Compose
Specification JSON schema as the check-jsonschema package ships it (a pinned dev dependency: no
network needed). The end-to-end test of the same shape
(real processes, no containers) is tests/e2e/test_celery_production_shape.py.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
SCHEMA = json.loads(
    (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text(encoding="utf-8")
)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)  # the draft the schema declares
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
RUNNING_AIRFLOW = AIRFLOW_SERVICES[1:]
AIRFLOW_HOME = "/opt/airflow"
INTERPOLATION = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


def env(service: str) -> dict[str, str]:
    environment = SERVICES[service].get("environment", {})
    assert isinstance(environment, dict), f"{service}: environment as a mapping"
    return {key: str(value) for key, value in environment.items()}


def mounts(service: str) -> dict[str, str]:
    """container path -> host path of the service's bind mounts."""
    result = {}
    for volume in SERVICES[service].get("volumes", []):
        # source:target[:mode]; the source may hold a ${VAR:-default} with its own colon
        match = re.fullmatch(r"(?P<source>.+?):(?P<target>/[^:]+)(?::(?:ro|rw))?", volume)
        assert match, volume
        result[match["target"]] = match["source"]
    return result


def test_valid_against_the_compose_specification():
    assert SCHEMA["title"] == "Compose Specification"
    VALIDATOR.check_schema(SCHEMA)
    errors = sorted(VALIDATOR(SCHEMA).iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_catches_mistakes():
    """The schema is strict: an unknown service key or a bad depends_on is an error."""
    validator = VALIDATOR(SCHEMA)
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["redis"]["helthcheck"] = {}
    assert list(validator.iter_errors(broken))
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["airflow-worker"]["depends_on"] = {"redis": {"condition": "when_ready"}}
    assert list(validator.iter_errors(broken))


def test_the_official_celery_layout():
    required = {"postgres", "redis", *AIRFLOW_SERVICES}
    assert required <= set(SERVICES)
    commands = {name: SERVICES[name].get("command") for name in RUNNING_AIRFLOW}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }
    for name in required:
        assert "profiles" not in SERVICES[name], f"{name} must start without a profile"
        assert "healthcheck" in SERVICES[name] or name == "airflow-init", name
    assert "postgres-db-volume" in COMPOSE["volumes"]
    assert mounts("postgres")["/var/lib/postgresql/data"] == "postgres-db-volume"


def test_every_airflow_service_runs_the_project_image():
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    official = f"apache/airflow:{pinned.group(1)}-python3.11"
    for name in AIRFLOW_SERVICES:
        service = SERVICES[name]
        assert service["build"]["context"] == ".", name
        # the official image unless the base is overridden (make compose-test: a local stand-in)
        assert service["build"]["args"] == {"AIRFLOW_BASE_IMAGE": f"${{AIRFLOW_BASE_IMAGE:-{official}}}"}, (
            name
        )
        assert service["image"] == SERVICES["airflow-apiserver"]["image"], name
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^ARG AIRFLOW_BASE_IMAGE={re.escape(official)}$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{AIRFLOW_BASE_IMAGE\}$", dockerfile, re.M)
    assert "pip install --no-cache-dir -r /opt/airflow/project/requirements.txt" in dockerfile
    assert "pip install --no-cache-dir --no-deps /opt/airflow/project" in dockerfile
    init = SERVICES["airflow-init"]["command"]
    assert init == ["bash", "/opt/airflow/docker/airflow-init.sh"]
    assert "docker/airflow-init.sh /opt/airflow/docker/airflow-init.sh" in dockerfile


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_dags_plugins_and_include_are_mounted(service):
    mounted = mounts(service)
    for folder in ("dags", "plugins", "include", "logs"):
        assert mounted[f"{AIRFLOW_HOME}/{folder}"] == "${AIRFLOW_PROJ_DIR:-.}/" + folder, (service, folder)
    # dags/king_qics.py reads ../include/administrations.yaml next to its own folder
    assert (ROOT / "dags" / "king_qics.py").exists() and (ROOT / "include" / "administrations.yaml").exists()


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_the_settings_the_dags_need(service):
    variables = env(service)
    assert variables["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert variables["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres/" in variables["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert variables["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert "@redis:6379/" in variables["AIRFLOW__CELERY__BROKER_URL"]
    assert variables["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert variables["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert variables["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    # the state store: PostgreSQL, its own database, named by the connection id the package reads
    assert variables["KING_QICS_STATE_CONN_ID"] == "king_qics_state"
    state_url = variables["AIRFLOW_CONN_KING_QICS_STATE"]
    assert re.fullmatch(r"postgresql://[^@]+@postgres:5432/king_qics_state", state_url)
    # secrets come from .env, never from this file
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        assert INTERPOLATION.match(variables[key]), (service, key)


def test_one_jwt_secret_for_all_airflow_services():
    secrets = {env(name)["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW_SERVICES}
    assert len(secrets) == 1
    assert secrets.pop().startswith("${AIRFLOW_JWT_SECRET:?")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^AIRFLOW_JWT_SECRET=replace-me$", example, re.M)
    assert re.search(r"^AIRFLOW_FERNET_KEY=replace-me$", example, re.M)


def test_the_environment_names_real_airflow_options():
    from airflow.configuration import conf

    known = conf.configuration_description  # core and provider (celery) options
    for name in AIRFLOW_SERVICES:
        for key in env(name):
            if key.startswith("AIRFLOW__"):
                _, section, option = key.split("__", 2)
                assert option.lower() in known[section.lower()]["options"], key


def test_the_execution_api_is_reachable_where_the_workers_look():
    assert "${AIRFLOW_API_PORT:-8080}:8080" in SERVICES["airflow-apiserver"]["ports"]
    worker_deps = SERVICES["airflow-worker"]["depends_on"]
    assert worker_deps["airflow-apiserver"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", RUNNING_AIRFLOW)
def test_start_order(service):
    depends = SERVICES[service]["depends_on"]
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


def test_airflow_init_migrates_creates_the_state_database_and_the_pools():
    script = (ROOT / "docker" / "airflow-init.sh").read_text(encoding="utf-8")
    assert "airflow db migrate" in script
    assert 'os.environ["AIRFLOW_CONN_KING_QICS_STATE"]' in script and "CREATE DATABASE" in script
    assert "demo_pools" in script and "airflow pools import" in script
    # demo_pools lives in tools/demo_home.py, which imports the sandbox package
    mounted = mounts("airflow-init")
    assert mounted[f"{AIRFLOW_HOME}/tools"] == "${AIRFLOW_PROJ_DIR:-.}/tools"
    assert mounted[f"{AIRFLOW_HOME}/sandbox"] == "${AIRFLOW_PROJ_DIR:-.}/sandbox"


def printed_by_mounted_tools(code: str):
    """What a container's Python that imports from the mounted /opt/airflow/tools prints (JSON),
    run here with the project's tools/ in its place."""
    done = subprocess.run(
        [sys.executable, "-c", code.replace(f"{AIRFLOW_HOME}/tools", str(ROOT / "tools"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_airflow_init_writes_the_pools_file_it_imports():
    """The init script's pools step (its heredoc) prints the pools that airflow pools import reads."""
    script = (ROOT / "docker" / "airflow-init.sh").read_text(encoding="utf-8")
    step = re.search(r"python - >/tmp/pools.json <<'PY'\n(.*?)\nPY\n", script, re.DOTALL)
    assert step, "the init script has no pools step"
    pools = printed_by_mounted_tools(step.group(1))
    assert pools and all(name.startswith("king_qics__") for name in pools), pools


def test_sandbox_connections_prints_the_connections_it_imports():
    """The sandbox-connections service's ``python -c`` prints the connections it imports."""
    command = SERVICES["sandbox-connections"]["command"][-1]
    connections = printed_by_mounted_tools(re.search(r"python -c '(.*?)'", command, re.DOTALL).group(1))
    assert {"king_noord", "king_zuid", "qics_sandbox"} <= set(connections), connections


def test_the_sandboxes_are_an_optional_profile():
    sandboxes = SERVICES["sandboxes"]
    assert sandboxes["profiles"] == ["sandboxes"]
    command = sandboxes["command"]
    assert command[:4] == ["python", "-m", "sandbox", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from the other containers
    assert {"${KING_SANDBOX_PORT:-8701}:8701", "${QICS_SANDBOX_PORT:-8702}:8702"} <= set(sandboxes["ports"])
    connections = SERVICES["sandbox-connections"]
    assert connections["profiles"] == ["sandboxes"]
    script = " ".join(connections["command"])
    assert "http://sandboxes:8701/v1/ws1_xml.asmx" in script and "http://sandboxes:8702" in script
    assert "airflow connections import" in script


def test_postgres_and_redis_are_the_official_images_unless_overridden():
    assert SERVICES["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:16}"
    assert SERVICES["redis"]["image"] == "${REDIS_IMAGE:-redis:7.2-bookworm}"


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def test_the_image_has_every_distribution_the_package_and_the_sandboxes_import():
    """The image installs requirements.txt only (not requirements-dev.txt): every module that
    plugins/king_qics (tasks), sandbox/ (the sandboxes service) or dags/ imports must come from it."""
    import importlib.metadata
    import sys

    imported = set()
    for folder in ("plugins/king_qics", "sandbox", "dags"):
        for source in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    imported.add(node.module.split(".")[0])
    providers = importlib.metadata.packages_distributions()
    runtime = _requirement_names(ROOT / "requirements.txt")
    missing = {}
    for module in sorted(imported - set(sys.stdlib_module_names) - {"king_qics", "sandbox", "__future__"}):
        distributions = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(module, [module])}
        if not distributions & runtime:
            missing[module] = sorted(distributions)
    assert not missing, f"imported but not in requirements.txt: {missing}"


def test_the_build_context_holds_what_the_dockerfile_copies():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    sources = set()
    for line in re.findall(r"^COPY (?:--\S+ )*(.+)$", dockerfile, re.M):
        sources |= set(line.split()[:-1])
    kept = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"
    }
    assert sources == kept
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert rules[0] == "*"  # everything else stays out (.venv, logs, .git, ...)


def test_the_compose_test_override_only_shortens_the_test():
    """docker/compose-test.yaml (make compose-test): valid, scheduler settings only, real options."""
    from airflow.configuration import conf

    override = yaml.safe_load((ROOT / "docker" / "compose-test.yaml").read_text(encoding="utf-8"))
    assert not list(VALIDATOR(SCHEMA).iter_errors(override))
    assert set(override) == {"services"} and set(override["services"]) == {"airflow-scheduler"}
    environment = override["services"]["airflow-scheduler"]["environment"]
    assert environment == {
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "false",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    }
    known = conf.configuration_description["scheduler"]["options"]
    assert {key.split("__")[2].lower() for key in environment} <= set(known)


def test_the_stand_in_airflow_image_keeps_the_official_contract():
    """docker/standin/airflow (make compose-test): what docker-compose.yaml relies on."""
    folder = ROOT / "docker" / "standin" / "airflow"
    dockerfile = (folder / "Dockerfile").read_text(encoding="utf-8")
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"ARG AIRFLOW_VERSION={pinned}" in dockerfile
    assert "useradd --uid 50000 --gid 0 --home-dir /home/airflow" in dockerfile
    assert "AIRFLOW_HOME=/opt/airflow" in dockerfile and "WORKDIR /opt/airflow" in dockerfile
    assert "PATH=/home/airflow/.local/bin:" in dockerfile and "USER airflow" in dockerfile
    assert 'ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]' in dockerfile
    assert "pip install --no-cache-dir -r /tmp/requirements.txt" in dockerfile
    entrypoint = (folder / "entrypoint.sh").read_text(encoding="utf-8")
    for contract in (
        "bash) shift; exec /bin/bash",
        "python) shift; exec python",
        "airflow) shift",
        "umask 0002",
    ):
        assert contract in entrypoint, contract
    for variable in ("CONNECTION_CHECK_MAX_COUNT", "_AIRFLOW_DB_MIGRATE", "_AIRFLOW_WWW_USER_CREATE"):
        assert variable in entrypoint, variable
    # the compose file uses the contract: plain subcommands, bash for the init, python for the sandboxes
    assert SERVICES["airflow-init"]["command"][0] == "bash"
    assert SERVICES["sandboxes"]["command"][0] == "python"
    assert SERVICES["sandboxes"]["environment"]["CONNECTION_CHECK_MAX_COUNT"] == "0"
