"""Table views of measured runs for people: the `bench` summary (one row per case, blank where a
field does not apply to the kernel) and the `calibrate` summary (one row per reference kernel and
dtype, not the 60-odd rows with `m n k = 0`). Pure functions of measured.csv / roofline.csv frames,
so a stored run renders without measuring anything. csv / json keep every row and column raw."""

from __future__ import annotations

import math
from typing import Any

from .output import NOT_APPLICABLE, as_records

# a shape field that is 0 (or empty) in measured.csv means the kernel has no such field: batch >= 1
# for every case that has a batch, m n k >= 1 for every GEMM, n_bytes >= 1 for every read / copy
SHAPE_FIELDS = ("batch", "query_len", "context", "m", "n", "k", "n_bytes")
TEXT_FIELDS = ("model", "phase", "cache_state")

# the default table (<= 120 columns); query_len, dtype, cv, noisy and the rest: --columns all or csv / json
BENCH_COLUMNS = ["kernel", "model", "batch", "context", "shape", "median_s", "achieved_flop_per_s",
                 "achieved_bytes_per_s", "bound", "fraction_of_roofline"]
BENCH_ALL = ["kernel", "model", "phase", "batch", "query_len", "context", "m", "n", "k", "n_bytes", "dtype",
             "cache_state", "median_s", "cv", "noisy", "achieved_flop_per_s", "achieved_bytes_per_s", "bound",
             "fraction_of_roofline", "fraction_of_peak_flop", "fraction_of_bandwidth", "case_id"]
CALIBRATE_COLUMNS = ["kernel", "dtype", "cases", "sizes", "best_flop_per_s", "best_bytes_per_s", "median_s",
                     "max_cv", "best_at"]
MIB = 1 << 20


def _missing(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, float) and math.isnan(v))


def _size(n_bytes: float) -> str:
    return f"{n_bytes / MIB:,.0f} MiB" if n_bytes >= MIB else f"{n_bytes / 1024:,.0f} KiB"


def shape_text(r: dict) -> str:
    """m x n x k for a GEMM, the working set of a read / copy; '' for a model-shaped case."""
    if all(not _missing(r.get(f)) and r.get(f) for f in ("m", "n", "k")):
        return f"{int(r['m'])}x{int(r['n'])}x{int(r['k'])}"
    nb = r.get("n_bytes")
    return _size(float(nb)) if not _missing(nb) and nb else ""


def blank_not_applicable(rows: list[dict]) -> list[dict]:
    """Rows for a table: 0 / empty shape fields and missing text fields print blank."""
    out = []
    for r in rows:
        r = dict(r)
        for f in SHAPE_FIELDS:
            if f in r and (_missing(r[f]) or r[f] == 0):
                r[f] = NOT_APPLICABLE
        for f in TEXT_FIELDS:
            if f in r and _missing(r[f]):
                r[f] = ""
        out.append(r)
    return out


def bench_rows(measured, roofline=None) -> list[dict]:
    """The ok rows of a measured frame (records or DataFrame), with the roofline columns joined by
    case_id where a roofline frame is given, and a `shape` column."""
    roof = {r["case_id"]: r for r in as_records(roofline)} if roofline is not None else {}
    rows = []
    for r in as_records(measured):
        if r.get("status", "ok") != "ok":
            continue
        extra = roof.get(r.get("case_id"), {})
        row = {c: (extra.get(c) if c in extra else r.get(c)) for c in BENCH_ALL if c in r or c in extra}
        row["shape"] = shape_text(r)
        rows.append(row)
    return rows


def calibrate_summary(reference) -> list[dict]:
    """One row per (kernel, dtype) of the reference rows: how many sizes, the best rate and where."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in as_records(reference):
        if r.get("status", "ok") == "ok":
            groups.setdefault((str(r["kernel"]), str(r.get("dtype") or "")), []).append(r)
    out = []
    for (kernel, dtype), rows in groups.items():
        flop = [r for r in rows if not _missing(r.get("achieved_flop_per_s")) and r["achieved_flop_per_s"] > 0]
        byt = [r for r in rows if not _missing(r.get("achieved_bytes_per_s")) and r["achieved_bytes_per_s"] > 0]
        best = max(flop, key=lambda r: r["achieved_flop_per_s"]) if flop else \
            max(byt, key=lambda r: r["achieved_bytes_per_s"]) if byt else None
        def volume(r: dict) -> float:
            mnk = float(r.get("m") or 0) * float(r.get("n") or 0) * float(r.get("k") or 0)
            return mnk + float(r.get("n_bytes") or 0)

        shapes = list(dict.fromkeys(shape_text(r) for r in sorted(rows, key=volume) if shape_text(r)))
        times = sorted(float(r["median_s"]) for r in rows if not _missing(r.get("median_s")))
        cvs = [float(r["cv"]) for r in rows if not _missing(r.get("cv"))]
        out.append({
            "kernel": kernel, "dtype": dtype, "cases": len(rows),
            "sizes": (f"{shapes[0]} .. {shapes[-1]}" if len(shapes) > 1 else shapes[0]) if shapes else "",
            "best_flop_per_s": max(r["achieved_flop_per_s"] for r in flop) if flop else NOT_APPLICABLE,
            "best_bytes_per_s": max(r["achieved_bytes_per_s"] for r in byt) if byt and not flop else NOT_APPLICABLE,
            "median_s": times[len(times) // 2] if times else None,
            "max_cv": max(cvs) if cvs else None,
            "best_at": shape_text(best) if best is not None else "",
        })
    return out
