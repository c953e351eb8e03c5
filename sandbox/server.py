"""Run both emulators in one process, each on its own port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import uvicorn

DEFAULT_KING_PORT = 8701
DEFAULT_QICS_PORT = 8702
DEFAULT_FIXTURE = Path(__file__).parent / "fixtures" / "demo.json"


def read_fixture(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        fixture = json.load(handle)
    fixture["_base_dir"] = str(Path(path).resolve().parent)  # PDFs are referenced relative to it
    return fixture


def build_emulators(
    fixture: dict | None = None, generate: int | None = None, seed: int = 1, qics_profile: str = "default"
):
    from sandbox.king import KingEmulator
    from sandbox.qics import QicsEmulator

    king, qics = KingEmulator(), QicsEmulator(profile=qics_profile)
    if generate is not None:
        king.load({"generate": generate, "seed": seed})
        qics.load({"generate": generate, "seed": seed})
    else:
        fixture = fixture if fixture is not None else read_fixture(DEFAULT_FIXTURE)
        base_dir = fixture.get("_base_dir")
        king.load({**fixture.get("king", {}), "_base_dir": base_dir})
        qics.load({**fixture.get("qics", {}), "_base_dir": base_dir})
    return king, qics


async def serve(
    king_app, qics_app, king_port: int, qics_port: int, log_level: str = "warning", host: str = "127.0.0.1"
) -> None:
    servers = [
        uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")
        )
        for app, port in ((king_app, king_port), (qics_app, qics_port))
    ]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            for task in tasks:
                task.cancel()
            raise SystemExit("sandbox: a port could not be opened")
        await asyncio.sleep(0.05)
    print(
        f"sandbox ready: King Cloudswitch http://{host}:{king_port}/v1/ws1_xml.asmx, "
        f"QicsMilestones http://{host}:{qics_port}/api/V3/odata/",
        flush=True,
    )
    await asyncio.gather(*tasks)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(
    king_port: int,
    qics_port: int,
    *,
    output=None,
    timeout: float = 60,
    qics_profile: str | None = None,
    latency_ms: float = 0.0,
):
    """``python -m sandbox serve`` as a child process, returned once both ports answer.

    ``output``: a file for the sandboxes' own log (never a pipe nobody reads: a full pipe would
    block the emulators); default: inherit. ``qics_profile``: ``--qics-profile`` (default: default).
    ``latency_ms``: ``--latency-ms``, every emulated request of both APIs delayed by this much.
    """
    import subprocess
    import sys
    import time

    import requests

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--king-port",
            str(king_port),
            "--qics-port",
            str(qics_port),
            *(["--qics-profile", qics_profile] if qics_profile else []),
            *(["--latency-ms", str(latency_ms)] if latency_ms else []),
        ],
        cwd=Path(__file__).resolve().parents[1],
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    deadline = time.monotonic() + timeout
    for port in (king_port, qics_port):
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/_sandbox/calls", timeout=2)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(
                        f"the sandboxes did not start on ports {king_port}/{qics_port}"
                    ) from None
                time.sleep(0.1)
    return process


def stop_process(process) -> None:
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
