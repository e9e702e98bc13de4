"""`daedalus claims`: the claims ledger (seed posts and the papers they lean on), each claim with its
source, quote, Daedalus's number and a verdict; written to results/claims.csv."""

from __future__ import annotations

from pathlib import Path

from bench.run_folder import DEFAULT_RESULTS, write_atomic
from simulators.claims import evaluate_claims
from simulators.claims.ledger import CLAIMS_FILE

from ..args import add_format
from ..output import emit
from ..safety import neutralise_csv
from . import COMMAND_HELP

CSV_NAME = "claims.csv"
TABLE_COLUMNS = ["id", "verdict", "published", "daedalus", "daedalus_low", "daedalus_high", "unit", "tolerance", "seeds"]


def run(args) -> int:
    df = evaluate_claims(args.ledger)
    out = Path(args.out) if args.out else Path(args.results) / CSV_NAME
    write_atomic(out, neutralise_csv(df))  # an export: no spreadsheet formulas
    shown = df[TABLE_COLUMNS] if args.format == "table" else df
    counts = ", ".join(f"{n} {v}" for v, n in df["verdict"].value_counts().items())
    emit(shown, args.format, title=f"{len(df)} claims: {counts}; full ledger in {out}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("claims", help=COMMAND_HELP["claims"])
    p.add_argument("--ledger", default=str(CLAIMS_FILE), metavar="PATH",
                   help="claims data file (default: the shipped simulators/claims/claims.yaml)")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), metavar="DIR",
                   help=f"folder the ledger CSV goes into (default: {DEFAULT_RESULTS})")
    p.add_argument("--out", default=None, metavar="PATH", help=f"CSV path (default: <results>/{CSV_NAME})")
    add_format(p)
    p.set_defaults(func=run)
