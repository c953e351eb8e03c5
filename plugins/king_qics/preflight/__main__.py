"""``python -m king_qics.preflight [--administration ID]... [--config FILE] [--write-probe --journal N]``

Checks the sync's guesses about the real King and Qics services for each administration (default:
all enabled ones) and prints one row per check; exits 1 when a check that would stop the sync
fails. Connections are read as Airflow reads them (AIRFLOW_CONN_* variables, a secrets backend, or
the metadata database of the Airflow home). Read-only unless ``--write-probe`` is given: then one
small booking with a PDF is made in the test journal ``--journal``, read back and deleted.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m king_qics.preflight", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument(
        "--administration", action="append", help="an administration id (repeatable; default all)"
    )
    parser.add_argument("--config", help="the administrations config (default: as the DAG file finds it)")
    parser.add_argument(
        "--write-probe", action="store_true", help="also book, read back and delete a test entry"
    )
    parser.add_argument("--journal", type=int, help="the test journal (DAGBOEK.NR) of the write probe")
    args = parser.parse_args(argv)
    if args.write_probe and args.journal is None:
        parser.error("--write-probe needs --journal (a test journal, never the sales journal in use)")

    from king_qics.catalog import config_path
    from king_qics.config import load_administrations
    from king_qics.preflight import failed, table
    from king_qics.preflight.run import preflight

    args.config = args.config or str(config_path())
    config = load_administrations(args.config)
    for error in config.errors:
        print(f"config: {error}", file=sys.stderr)
    chosen = [adm for adm in config.administrations if adm.enabled]
    if args.administration:
        chosen = [adm for adm in config.administrations if adm.id in args.administration]
        unknown = set(args.administration) - {adm.id for adm in chosen}
        if unknown:
            parser.error(f"not (validly) configured in {args.config}: {', '.join(sorted(unknown))}")
    status = 0
    for adm in chosen:
        checks = preflight(adm, config, probe_journal=args.journal if args.write_probe else None)
        print(f"\n== {adm.id}: {adm.name}\n{table(checks)}")
        stopping = failed(checks)
        print(f"-> {len(stopping)} check(s) would stop the sync" if stopping else "-> ready")
        status = status or (1 if stopping else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
