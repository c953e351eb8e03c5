"""``python -m sandbox serve [--host H] [--king-port P] [--qics-port Q] [--fixture FILE | --generate N]
[--seed S] [--king-profile default|alt] [--qics-profile default|alt] [--latency-ms MS]``"""

from __future__ import annotations

import argparse
import asyncio

from sandbox.king.wire import PROFILES as KING_PROFILES
from sandbox.qics.profile import PROFILES as QICS_PROFILES
from sandbox.server import (
    DEFAULT_FIXTURE,
    DEFAULT_KING_PORT,
    DEFAULT_QICS_PORT,
    build_emulators,
    read_fixture,
    serve,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="start the King and Qics emulators on 127.0.0.1")
    run.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container; default 127.0.0.1)"
    )
    run.add_argument("--king-port", type=int, default=DEFAULT_KING_PORT)
    run.add_argument("--qics-port", type=int, default=DEFAULT_QICS_PORT)
    source = run.add_mutually_exclusive_group()
    source.add_argument("--fixture", help=f"JSON fixture (default: {DEFAULT_FIXTURE.name})")
    source.add_argument(
        "--generate", type=int, metavar="N", help="generate N debtors with consistent lookups"
    )
    run.add_argument("--seed", type=int, default=1, help="seed of the generator and of fault draws")
    run.add_argument(
        "--qics-profile",
        default="default",
        choices=sorted(QICS_PROFILES),
        help='the Qics wire profile (sandbox/qics/profile.py); a fixture\'s "profile" key overrides it',
    )
    run.add_argument("--log-level", default="warning")
    run.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay every emulated request of both APIs by this much (a real API's round trip)",
    )
    run.add_argument(
        "--king-profile",
        choices=sorted(KING_PROFILES),
        default=None,
        help="the King wire profile the emulator speaks (sandbox/king/wire.py; default: the fixture's)",
    )
    args = parser.parse_args(argv)

    fixture = read_fixture(args.fixture) if args.fixture else None
    king, qics = build_emulators(fixture, args.generate, args.seed, qics_profile=args.qics_profile)
    if args.king_profile:
        king.wire = KING_PROFILES[args.king_profile]
    king.faults.latency_seconds = qics.faults.latency_seconds = args.latency_ms / 1000
    asyncio.run(serve(king.app, qics.app, args.king_port, args.qics_port, args.log_level, args.host))


if __name__ == "__main__":
    main()
