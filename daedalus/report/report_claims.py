"""The report's claims section: the ledger (`simulators.claims`) as a table, verdict first, with the
source, quote and Daedalus's number of every claim. Verdict colours from matplotlib's
tableau-colorblind10 (blue / orange / grey), and each verdict is also spelled out."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from simulators.claims import VERDICTS, evaluate_claims

from .report_html import esc, fmt_num, table

VERDICT_COLOURS = {"reproduced": "#006BA4", "refuted": "#C85200", "not checkable": "#595959"}  # colour-blind safe


@lru_cache(maxsize=1)
def claims_frame() -> pd.DataFrame:
    """The evaluated ledger, once per process (the briefing and the section share it)."""
    return evaluate_claims()


def verdict_badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#595959")
    return f'<span class="badge" style="background:{colour}">{esc(verdict)}</span>'


def fmt_value(v, unit: str | None) -> str:
    """A published or computed figure for people: fractions as %, bytes as KB, params as B."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "-"
    if isinstance(v, str):
        return v
    unit = unit or ""
    if unit == "fraction":
        return f"{100 * float(v):.1f}%"
    if unit == "bytes":
        return f"{float(v) / 1e3:.3f} KB"
    if unit == "params":
        return f"{float(v) / 1e9:.1f}B"
    if unit == "flop":
        return f"{float(v) / 1e9:.0f} GFLOP"
    if unit == "s":
        return f"{float(v) * 1e3:.2f} ms"
    if unit == "ratio":
        return f"{float(v):.3g}×"
    return fmt_num(v)


def daedalus_text(r) -> str:
    unit = r.get("daedalus_unit") or r["unit"]
    if r["daedalus_low"] is not None and not pd.isna(r["daedalus_low"]):
        return f"{fmt_value(r['daedalus_low'], unit)} – {fmt_value(r['daedalus_high'], unit)}"
    return fmt_value(r["daedalus"], unit)


def verdict_counts(df: pd.DataFrame) -> dict[str, int]:
    return {v: int((df["verdict"] == v).sum()) for v in VERDICTS}


def claims_section(df: pd.DataFrame | None = None) -> str:
    df = claims_frame() if df is None else df
    counts = verdict_counts(df)
    intro = (f"<p>{len(df)} claims from the seed blog posts and the papers they lean on: "
             + ", ".join(f"{verdict_badge(v)} {n}" for v, n in counts.items())
             + ". Verdicts: <b>reproduced</b> = Daedalus's number agrees within the stated tolerance (or on the "
               "stated side of a bound); <b>refuted</b> = it does not; <b>not checkable</b> = the why column says "
               "why (out of scope, or <i>pending</i>: needs a module or model not in this build). "
               "The same table is <code>results/claims.csv</code> (<code>daedalus claims</code>).</p>")
    order = {v: i for i, v in enumerate(VERDICTS)}
    rows = []
    for _, r in df.sort_values("verdict", key=lambda s: s.map(order), kind="stable").iterrows():
        rows.append([
            verdict_badge(r["verdict"]),
            esc(r["id"]) + f'<span class="muted">{esc(r["seeds"] or "paper")}</span>',
            esc(r["claim"]) + f'<span class="muted">“{esc(r["quote"])}”</span>',
            f'<div class="source">{esc(r["source"])}<span class="muted">{esc(r["source_status"])}</span></div>',
            esc(fmt_value(r["published"], r["unit"])),
            esc(daedalus_text(r)) + (f'<span class="muted">{esc(r["detail"])}</span>' if r["detail"] else ""),
            esc(r["tolerance"] or "-"),
            f'<div class="source">{esc(r["why"])}</div>',
        ])
    return intro + table(["verdict", "id (seed posts)", "claim and quote", "source", "published", "Daedalus",
                          "tolerance", "why"], rows, raw_columns=range(8))
