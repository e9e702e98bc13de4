"""The report's opening briefing: one screen a manager can read. What was measured on this machine,
how well the simulator predicted it (per family, against the targets), what that means for the
accelerator predictions (which mode, which sources), the headline memory and planning answers, and
the claims verdicts. Every figure is read from the run's files, the predict frames or the claims
ledger; nothing is computed here that the rest of the report does not show."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from simulators.hardware import HardwareProfile
from simulators.roofline import Mode

from .frames import COMPARISON_BATCHES, CONTEXT, SimFrames
from .report_claims import claims_frame, daedalus_text, verdict_badge, verdict_counts
from .report_data import RunInputs
from .report_html import esc, table

TARGET_OVERALL_PCT = 10.0  # calibrated median |error|, all scored cases (issue 8)
TARGET_FAMILY_PCT = 15.0  # ... per benchmark family
HOST_VENDOR = "host"
HEADLINE_CLAIMS = ("mla-90-v3-vs-mha", "mla-90-v3-vs-llama-405b", "mla-90-v3-vs-qwen2.5-72b",
                   "mla-90-v3-fp8-vs-llama-405b", "v2-kv-93.3", "mla-90-inference-memory")


def _measured(inputs: RunInputs) -> str:
    m, env = inputs.measured, inputs.env or {}
    where = " / ".join(str(env[k]) for k in ("device", "cpu") if env.get(k)) or "this machine"
    if m is None or m.empty:
        return f"No measurements in this run ({esc(where)}): the predictions below are the simulator's alone."
    ok = m[m["status"] == "ok"]
    return (f"{len(ok)} kernel cases timed on {esc(where)} ({ok['kernel'].nunique()} kernels in "
            f"{ok['family'].nunique()} families; {len(m) - len(ok)} skipped).")


def _validation(inputs: RunInputs) -> str:
    vs = inputs.validation_summary
    if vs is None or vs.empty:
        return "Not scored: validation_summary.csv not available."
    if "subset" in vs.columns:
        vs = vs[vs["subset"] == "all"]
    cal = vs[vs["mode"] == "calibrated"]
    sol = vs[(vs["mode"] == "speed_of_light") & (vs["family"] == "all")]
    parts = []
    overall = cal[cal["family"] == "all"]
    if len(overall):
        o = float(overall["mdape_pct"].iloc[0])
        parts.append(f"<b>{o:.1f}%</b> median error overall, calibrated "
                     f"({'meets' if o <= TARGET_OVERALL_PCT else 'misses'} the {TARGET_OVERALL_PCT:g}% target)")
    fams = cal[cal["family"] != "all"].sort_values("mdape_pct")
    if len(fams):
        cells = [f"{esc(r.family)} {r.mdape_pct:.0f}%{'' if r.mdape_pct <= TARGET_FAMILY_PCT else ' ✗'}"
                 for r in fams.itertuples()]
        miss = int((fams["mdape_pct"] > TARGET_FAMILY_PCT).sum())
        parts.append(f"per family (target {TARGET_FAMILY_PCT:g}%, ✗ = missed, {miss} of {len(fams)}): "
                     + ", ".join(cells))
    if len(sol):
        parts.append(f"speed of light, uncalibrated: {float(sol['mdape_pct'].iloc[0]):.0f}%")
    return "; ".join(parts) or "No calibrated rows in validation_summary.csv."


def _mode_and_sources(frames: SimFrames, profiles: Sequence[HardwareProfile]) -> str:
    accel = [h for h in profiles if h.vendor != HOST_VENDOR]
    modes = sorted(set(frames.comparison["mode"])) if frames.comparison is not None and "mode" in frames.comparison \
        else [Mode.SPEED_OF_LIGHT.value]
    rows = [r for h in accel for r in h.provenance()]
    by_status = pd.Series([r["status"] for r in rows]).value_counts().to_dict() if rows else {}
    contested = [f"{r['hardware']} {r['field'].replace('peak_flop_per_s.', '')}" for r in rows
                 if r.get("range_low") is not None]
    text = (f"Mode <b>{esc(', '.join(m.replace('_', ' ') for m in modes))}</b> (datasheet peaks and bandwidths: an "
            "upper bound on speed; the host calibration above does not transfer to accelerators). Sources of the "
            f"{len(rows)} hardware numbers used: " + ", ".join(f"{n} {esc(s)}" for s, n in by_status.items()))
    if contested:
        text += f"; contested, shown as ranges: {esc(', '.join(contested[:6]))}{' …' if len(contested) > 6 else ''}"
    if hasattr(Mode, "ACHIEVABLE"):
        text += ". An achievable-rate mode (published kernel rates) is available: <code>--mode achievable</code>"
    return text + "."


def _memory(claims: pd.DataFrame) -> str:
    rows = claims.set_index("id")
    parts = []
    for cid in HEADLINE_CLAIMS:
        if cid in rows.index:
            r = rows.loc[cid]
            parts.append(f"{esc(r['claim'])}: <b>{esc(daedalus_text(r))}</b> {verdict_badge(r['verdict'])}")
    return "<br>".join(parts) or "claims ledger not available"


def _planning(frames: SimFrames) -> str:
    c = frames.comparison
    if c is None or c.empty:
        return "predicted.csv not available."
    batch = max(COMPARISON_BATCHES)
    d = c[(c["batch"] == batch)]
    if "context" in d:
        d = d[d["context"] == CONTEXT]
    d = d.sort_values("tokens_per_s", ascending=False)
    cells = [f"{esc(r.hardware)} {r.tokens_per_s:,.0f} tok/s, ≥{int(r.devices_for_memory)} devices"
             for r in d.itertuples()]
    return (f"{esc(frames.breakdown_model)}, decode batch {batch}, context {CONTEXT:,}, one device's roofline "
            f"(tokens/s per device; devices needed just to hold weights + KV): " + "; ".join(cells) + ".")


def _claims(claims: pd.DataFrame) -> str:
    counts = verdict_counts(claims)
    refuted = claims[claims["verdict"] == "refuted"]
    pending = int(claims["why"].fillna("").str.startswith("pending").sum())
    return (", ".join(f"{verdict_badge(v)} {n}" for v, n in counts.items())
            + f" of {len(claims)} ({pending} pending a module or model of another issue). Refuted: "
            + "; ".join(esc(c) for c in refuted["claim"]) + ".")


def briefing(inputs: RunInputs, frames: SimFrames, profiles: Sequence[HardwareProfile]) -> str:
    try:
        claims = claims_frame()
    except Exception as exc:  # noqa: BLE001 - the briefing must render even when the ledger cannot
        claims = pd.DataFrame(columns=["id", "claim", "verdict", "why"])
        claims_text = f"claims ledger not available: {esc(exc)}"
    else:
        claims_text = _claims(claims)
    rows = [
        ("Measured here", _measured(inputs)),
        ("Simulator vs measured", _validation(inputs)),
        ("Accelerator predictions", _mode_and_sources(frames, profiles)),
        ("Memory (KV cache)", _memory(claims) if len(claims) else claims_text),
        ("Planning", _planning(frames)),
        ("Claims checked", claims_text),
    ]
    return ('<p class="muted">One screen: the details and every source are in the sections below.</p>'
            + table(["", ""], rows, css_class="summary", raw_columns=(0, 1),
                    header_html="<tr><th>Question</th><th>Answer</th></tr>"))
