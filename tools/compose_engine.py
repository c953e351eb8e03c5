"""The Docker engine and the compose v2 / buildx CLI plugins for ``make compose-test`` (run as root).

- Engine: Debian's ``docker.io`` (dockerd, containerd, runc), installed when ``dockerd`` is missing
  and started in the background when no engine answers (log: ``DOCKERD_LOG``).
- ``docker compose`` v2 and ``docker buildx``: bookworm packages only the old Python
  docker-compose 1.29, so the Go plugins come from Debian trixie's ``docker-compose`` and
  ``docker-buildx`` packages (pinned below), downloaded with apt from the machine's own Debian
  mirror into a private apt state (the machine's package database is not touched), unpacked with
  ``dpkg-deb`` and copied to ``PLUGIN_DIR``. Both are Go binaries that need only libc (2.34+).

The engine started here keeps running after the test (later runs reuse it and its image cache).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from standin_images import apt_install, debian_mirror, run

DOCKERD_LOG = Path("/var/log/king-qics-dockerd.log")
PLUGIN_DIR = Path("/usr/local/lib/docker/cli-plugins")
PLUGINS = {  # docker CLI plugin -> (Debian trixie package, version)
    "compose": ("docker-compose", "2.26.1-4"),
    "buildx": ("docker-buildx", "0.13.1+ds1-3"),
}
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def answers(*args: str) -> bool:
    return subprocess.run(args, capture_output=True).returncode == 0


def ensure_engine(timeout: float = 90) -> None:
    if answers("docker", "info"):
        return
    if shutil.which("dockerd") is None:
        apt_install("docker.io")
    print(f"starting dockerd in the background (log: {DOCKERD_LOG})", flush=True)
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(
            ["dockerd"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not answers("docker", "info"):
        if time.monotonic() > deadline:
            raise SystemExit(f"dockerd did not answer within {timeout:.0f} s; see {DOCKERD_LOG}")
        time.sleep(1)


def _download_trixie(packages: list[str], folder: Path) -> None:
    """apt-get download from Debian trixie, with a private sources list, lists and cache."""
    (folder / "lists" / "partial").mkdir(parents=True)
    (folder / "cache" / "archives" / "partial").mkdir(parents=True)
    sources = folder / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {debian_mirror()} trixie main\n", encoding="utf-8")
    options = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={folder / 'lists'}",
        f"-oDir::Cache={folder / 'cache'}",
        "-oDir::State::status=/dev/null",
        "-oAPT::Sandbox::User=root",
    ]
    run("apt-get", *options, "update")
    subprocess.run(["apt-get", *options, "download", *packages], check=True, cwd=folder)


def ensure_cli_plugins() -> None:
    missing = {name: pkg for name, pkg in PLUGINS.items() if not answers("docker", name, "version")}
    if not missing:
        return
    with tempfile.TemporaryDirectory(prefix="kqs-plugins-") as tmp:
        folder = Path(tmp)
        _download_trixie([f"{package}={version}" for package, version in missing.values()], folder)
        unpacked = folder / "unpacked"
        for deb in folder.glob("*.deb"):
            run("dpkg-deb", "-x", str(deb), str(unpacked))
        PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
        for name in missing:
            binary = unpacked / "usr/libexec/docker/cli-plugins" / f"docker-{name}"
            shutil.copy(binary, PLUGIN_DIR / binary.name)
            (PLUGIN_DIR / binary.name).chmod(0o755)
    for name in missing:
        run("docker", name, "version")


def ensure_all() -> None:
    ensure_engine()
    ensure_cli_plugins()


if __name__ == "__main__":
    ensure_all()
