"""Local stand-ins for the official images docker-compose.yaml uses, from Debian's packages and PyPI alone.

Where no container registry is reachable, ``make compose-test`` builds its images with this script:

1. ``debootstrap`` a minimal Debian bookworm root (from the machine's own Debian mirror, as apt has
   it configured) and ``docker import`` it as ``king-qics-standin/debian:bookworm``;
2. on it, stand-ins of ``apache/airflow:3.3.2-python3.11`` (Python 3.11, Airflow and every
   dependency from requirements.txt), ``postgres`` (Debian's postgresql-15) and ``redis``
   (Debian's redis-server): docker/standin/*/Dockerfile.

An image is rebuilt when its sources changed (a digest label: its docker/standin/ folder,
requirements.txt); ``--rebuild`` builds all again. What the stand-ins do
differently from the official images: docs/production.md. Run as root:
``python tools/standin_images.py [--rebuild]``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "docker" / "standin"
SUITE = "bookworm"
DEBIAN_IMAGE = "king-qics-standin/debian:bookworm"
IMAGES = {  # compose variable -> stand-in image
    "AIRFLOW_BASE_IMAGE": "king-qics-standin/airflow:3.3.2-python3.11",
    "POSTGRES_IMAGE": "king-qics-standin/postgres:15",
    "REDIS_IMAGE": "king-qics-standin/redis:7.0",
}
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(args), flush=True)
    return subprocess.run(args, check=True, **kwargs)


DIGEST_LABEL = "org.king-qics-sync.stand-in.sources"


def image_label(name: str) -> str | None:
    """The sources digest an image was built from; None when there is no such image."""
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{DIGEST_LABEL}" }}}}', name],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def sources_digest(folder: str, extra_files: dict[str, Path]) -> str:
    """sha256 over docker/standin/<folder>/* and the extra files: a change means a rebuild."""
    digest = hashlib.sha256()
    for path in sorted((STANDIN / folder).iterdir()) + [extra_files[k] for k in sorted(extra_files)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses (the first ``URIs:`` of its bookworm sources)."""
    text = APT_SOURCES.read_text(encoding="utf-8")
    for stanza in re.split(r"\n\s*\n", text):
        uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
        suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
        if uris and suites and SUITE in suites.group(1).split():
            return uris.group(1)
    raise SystemExit(f"no {SUITE} source in {APT_SOURCES}")


def apt_install(*packages: str) -> None:
    run("apt-get", "update")
    run("apt-get", "install", "-y", "--no-install-recommends", *packages)


def ensure_debootstrap() -> None:
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")


def build_debian_base() -> None:
    """debootstrap --variant=minbase, the machine's apt sources inside, then docker import."""
    ensure_debootstrap()
    with tempfile.TemporaryDirectory(prefix="kqs-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run("debootstrap", "--variant=minbase", SUITE, str(rootfs), debian_mirror())
        # the same sources as the machine (bookworm, -updates, -security); no package caches
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        shutil.copy(APT_SOURCES, rootfs / "etc/apt/sources.list.d/debian.sources")
        (rootfs / "etc/apt/apt.conf.d/99stand-in").write_text(
            'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n', encoding="utf-8"
        )
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        )
        run(
            "docker",
            "import",
            "--change",
            'CMD ["bash"]',
            "--message",
            f"debootstrap --variant=minbase {SUITE} (king-qics-sync stand-in base)",
            "-",
            DEBIAN_IMAGE,
            stdin=tar.stdout,
        )
        if tar.wait() != 0:
            raise SystemExit("tar of the debootstrap root failed")


def build_image(name: str, folder: str, extra_files: dict[str, Path], digest: str) -> None:
    """docker build of docker/standin/<folder>, in a context of its own with ``extra_files``."""
    with tempfile.TemporaryDirectory(prefix=f"kqs-{folder}-") as context:
        shutil.copytree(STANDIN / folder, context, dirs_exist_ok=True)
        for target, source in extra_files.items():
            shutil.copy(source, Path(context) / target)
        run(
            "docker",
            "build",
            "--build-arg",
            f"DEBIAN_IMAGE={DEBIAN_IMAGE}",
            "--label",
            "org.opencontainers.image.description=king-qics-sync stand-in (docs/production.md)",
            "--label",
            f"{DIGEST_LABEL}={digest}",
            "--tag",
            name,
            context,
        )


def build_all(rebuild: bool = False) -> dict[str, str]:
    """Build what is missing (or everything); returns the compose variables naming the images."""
    timings = {}
    if rebuild or image_label(DEBIAN_IMAGE) is None:
        started = time.monotonic()
        build_debian_base()
        timings[DEBIAN_IMAGE] = time.monotonic() - started
    sources = {
        "AIRFLOW_BASE_IMAGE": (
            "airflow",
            {"requirements.txt": ROOT / "requirements.txt", "host-ca.crt": HOST_CA_BUNDLE},
        ),
        "POSTGRES_IMAGE": ("postgres", {}),
        "REDIS_IMAGE": ("redis", {}),
    }
    for variable, (folder, extra_files) in sources.items():
        digest = sources_digest(folder, extra_files)
        if rebuild or image_label(IMAGES[variable]) != digest:
            started = time.monotonic()
            build_image(IMAGES[variable], folder, extra_files, digest)
            timings[IMAGES[variable]] = time.monotonic() - started
    for name, seconds in timings.items():
        print(f"built {name} in {seconds:.0f} s", flush=True)
    return dict(IMAGES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="build every image again")
    args = parser.parse_args()
    for variable, image in build_all(args.rebuild).items():
        print(f"{variable}={image}")


if __name__ == "__main__":
    main()
