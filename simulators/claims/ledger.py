"""Load `claims.yaml` and evaluate every claim into one tidy DataFrame (one row per claim).

Claim kinds and their verdicts (Daedalus's number d, the published figure x, the tolerance t):
  value          reproduced if |d - x| <= t (abs) or |d / x - 1| <= t (rel), else refuted
  range          d is a (low, high) range over what the source leaves unstated; reproduced if x lies in
                 [low, high] widened by t (rel), else refuted
  above / below  the claim says the quantity is above / below x; reproduced if d > x (d < x), else refuted
  equals         a label; reproduced if d == x, else refuted
  not_checkable  no verdict Daedalus can compute (the `why` says why); a check, if named, gives context
  traced         the claim's figure traced to its source; the verdict and why are the trace's
A check that needs something not in this tree raises Pending: verdict "not checkable", why = what it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..hardware import read_yaml
from . import checks_compute, checks_memory, checks_pending
from .outcome import Outcome, Pending

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
KINDS = ("value", "range", "above", "below", "equals", "not_checkable", "traced")
VERDICTS = ("reproduced", "refuted", "not checkable")
CHECKS = {**checks_memory.CHECKS, **checks_compute.CHECKS, **checks_pending.CHECKS}
REQUIRED = ("id", "claim", "quote", "source", "source_status", "kind")
SOURCE_STATUSES = ("primary", "primary_copy", "secondary", "seed")
OPTIONAL = ("seeds", "published", "unit", "daedalus_unit", "tolerance", "check", "args", "why", "verdict", "note")
COLUMNS = ["id", "claim", "seeds", "quote", "source", "source_status", "kind", "published", "daedalus",
           "daedalus_low", "daedalus_high", "unit", "daedalus_unit", "tolerance", "verdict", "why", "detail", "check", "note"]


def load_claims(path: str | Path = CLAIMS_FILE) -> list[dict[str, Any]]:
    """The claims of a ledger file, validated: one clear line naming the claim and field otherwise."""
    path = Path(path)
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'claims' list")
    seen: set[str] = set()
    for i, c in enumerate(doc["claims"]):
        where = f"{path}: claims[{i}]"
        if not isinstance(c, dict):
            raise ConfigError(f"{where}: expected a mapping")
        where = f"{path}: claim {c.get('id', i)!r}"
        missing = [k for k in REQUIRED if not c.get(k)]
        if missing:
            raise ConfigError(f"{where}: missing required field '{missing[0]}'")
        unknown = set(c) - set(REQUIRED) - set(OPTIONAL)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if c["id"] in seen:
            raise ConfigError(f"{where}: duplicate id")
        seen.add(c["id"])
        if c["kind"] not in KINDS:
            raise ConfigError(f"{where}: field 'kind': expected one of {', '.join(KINDS)}, got {c['kind']!r}")
        if c["source_status"] not in SOURCE_STATUSES:
            raise ConfigError(f"{where}: field 'source_status': expected one of {', '.join(SOURCE_STATUSES)}")
        if c.get("check") is not None and c["check"] not in CHECKS:
            raise ConfigError(f"{where}: field 'check': unknown check {c['check']!r}")
        if c["kind"] in ("value", "range", "above", "below", "equals"):
            if c.get("check") is None or c.get("published") is None:
                raise ConfigError(f"{where}: kind {c['kind']} needs 'check' and 'published'")
        if c["kind"] in ("value", "range"):
            tol = c.get("tolerance")
            if not isinstance(tol, dict) or len(tol) != 1 or not set(tol) <= {"abs", "rel"}:
                raise ConfigError(f"{where}: field 'tolerance': expected {{abs: x}} or {{rel: x}}")
        if c["kind"] in ("not_checkable", "traced") and not c.get("why"):
            raise ConfigError(f"{where}: kind {c['kind']} needs 'why'")
        if c["kind"] == "traced" and c.get("verdict") not in VERDICTS:
            raise ConfigError(f"{where}: kind traced needs 'verdict', one of {', '.join(VERDICTS)}")
    return doc["claims"]


def _tolerance_text(tol: dict | None) -> str:
    if not tol:
        return ""
    (k, v), = tol.items()
    return f"±{v:g}" if k == "abs" else f"±{100 * v:g}%"


def _judge(c: dict, o: Outcome) -> tuple[str, str]:
    kind, x = c["kind"], c.get("published")
    d = o.value
    if kind == "value":
        (k, t), = c["tolerance"].items()
        off = abs(d - x) if k == "abs" else abs(d / x - 1.0)
        ok = off <= t
        return ("reproduced" if ok else "refuted"), (f"within {_tolerance_text(c['tolerance'])}" if ok else
                                                    f"off by {off:.3g}{'' if k == 'abs' else ' (relative)'}, "
                                                    f"beyond {_tolerance_text(c['tolerance'])}")
    if kind == "range":
        lo, hi = d
        t = c["tolerance"].get("rel", 0.0)
        ok = lo * (1 - t) <= x <= hi * (1 + t)
        return ("reproduced" if ok else "refuted"), (f"published value inside Daedalus's range {lo:.3g}-{hi:.3g} "
                                                    f"(widened {_tolerance_text(c['tolerance'])})" if ok else
                                                    f"published value outside {lo:.3g}-{hi:.3g} "
                                                    f"(widened {_tolerance_text(c['tolerance'])})")
    if kind in ("above", "below"):
        ok = d > x if kind == "above" else d < x
        return ("reproduced" if ok else "refuted"), f"Daedalus {d:.4g} is {'' if ok else 'not '}{kind} {x:g}"
    if kind == "equals":
        ok = d == x
        return ("reproduced" if ok else "refuted"), f"Daedalus {d!r}, the claim {x!r}"
    raise AssertionError(kind)


def evaluate_claim(c: dict) -> dict[str, Any]:
    row: dict[str, Any] = {k: c.get(k) for k in ("id", "claim", "quote", "source", "source_status", "kind",
                                                 "published", "unit", "daedalus_unit", "check", "note")}
    row["seeds"] = ",".join(c.get("seeds") or [])
    row["daedalus_unit"] = c.get("daedalus_unit") or c.get("unit")
    row["tolerance"] = _tolerance_text(c.get("tolerance"))
    row.update(daedalus=None, daedalus_low=None, daedalus_high=None, detail="")
    outcome = None
    pending = ""
    if c.get("check"):
        try:
            outcome = CHECKS[c["check"]](**(c.get("args") or {}))
        except Pending as exc:
            pending = str(exc)
    if outcome is not None:
        row["detail"] = outcome.detail
        if isinstance(outcome.value, tuple):
            row["daedalus_low"], row["daedalus_high"] = (float(v) for v in outcome.value)
        else:
            row["daedalus"] = outcome.value
    if pending:
        row["verdict"], row["why"] = "not checkable", pending + (f"; {c['why']}" if c.get("why") else "")
    elif c["kind"] == "not_checkable":
        row["verdict"], row["why"] = "not checkable", c["why"]
    elif c["kind"] == "traced":
        row["verdict"], row["why"] = c["verdict"], c["why"]
    else:
        row["verdict"], why = _judge(c, outcome)
        row["why"] = why + (f"; {c['why']}" if c.get("why") else "")
    return row


def evaluate_claims(path: str | Path = CLAIMS_FILE, ids: list[str] | None = None) -> pd.DataFrame:
    """One row per claim (or per claim in `ids`): source, quote, published figure, Daedalus's number (or
    range), verdict, why."""
    claims = load_claims(path)
    if ids is not None:
        unknown = set(ids) - {c["id"] for c in claims}
        if unknown:
            raise ConfigError(f"{path}: no claim with id {', '.join(sorted(unknown))}")
        claims = [c for c in claims if c["id"] in ids]
    return pd.DataFrame([evaluate_claim(c) for c in claims], columns=COLUMNS)
