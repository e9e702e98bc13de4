"""The calibrated roofline's fit: measured curves, per-family efficiencies, leave-one-out scoring.

Pure numpy/pandas/scipy. What is measured and what is fitted (see `simulators.roofline.time_s`, the
one time function both sides evaluate):

- measured (rows with role `reference`, never scored): the GEMM rate by rows per reused operand for
  each dtype (square and skinny GEMMs), the streaming-read bandwidth by working-set size (cache- to
  DRAM-resident), and the dispatch time of one op (its fastest sample: a floor);
- fitted on the scored rows (role `case`): a compute and a memory efficiency per benchmark family,
  and one compute/memory overlap exponent p for the device: 2 F + 1 parameters for F families;
- scored leave-one-out: each case is predicted by a fit made without it (no fold seed to move the
  score), in both modes: speed of light (peaks, max, no overhead) and calibrated.

Efficiencies well above 1 mean the model form misses something for that family; `summarise`
reports them so the report can flag them instead of presenting them as meaningful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .hardware import CALIBRATION_VERSION, Calibration, HardwareProfile
from .roofline import Efficiency, Mode, dram_share, interp_curve, resolve_peak, time_s

WITHIN_PCT = 25.0
EFFICIENCY_BOUNDS = (1e-3, 4.0)
OVERLAP_BOUNDS = (1.0, 16.0)
PRIOR_WEIGHT = 0.05  # pulls an unidentified efficiency (e.g. memory in a compute-bound family) to 1
SUSPECT_EFFICIENCY = 1.1  # fitted above this: the model form misses something (cache, fusion, shape)
REFERENCE = "reference"
CASE = "case"


@dataclass(frozen=True)
class Curves:
    """What calibration measured: rate curves, bandwidth curve, per-op dispatch time."""

    rate_by_rows: dict[str, tuple[tuple[float, float], ...]]
    bandwidth_by_bytes: tuple[tuple[float, float], ...]
    overhead_s_per_op: float = 0.0
    cache_bytes: float = math.inf  # the host's last-level cache (the DRAM share of a drift); inf on accelerators
    drift_corrected: bool = False  # bandwidth at the run's usual level (`memory_drift` divided out);
    # `measure_curves` turns it on for a run that recorded its probe bandwidth (see there)


@dataclass(frozen=True)
class Fit:
    compute_efficiency: dict[str, float]
    memory_efficiency: dict[str, float]
    overlap_exponent: float


def _best(points: pd.DataFrame, x: str, y: str) -> tuple[tuple[float, float], ...]:
    g = points.groupby(x)[y].max().sort_index()
    return tuple((float(k), float(v)) for k, v in g.items() if k > 0 and v > 0)


def no_faster_than_more_rows(curve: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    """The rate at r rows capped by every rate measured at more rows: min over rows' >= r.

    More rows per reused operand only add reuse, so a rate that falls as rows grow is not a rows
    effect but the size of the problem: a small square GEMM fits the cache whole. On the 2-vCPU AMD
    EPYC (Zen 4) guest, fp32 square GEMMs ran 160 GFLOP/s at n = 512 (3 MiB), 133 at 1024 and 125 at
    2048, and the kernels with ~512 rows and large operands ran at the larger GEMMs' rate (V4's CSA
    compressor 129 GFLOP/s at 256 query rows, 134 at 512). Leave-one-out, uncapped -> capped, over
    four runs of that guest: 12.5 -> 12.3, 17.8 -> 13.9, 13.1 -> 12.2, 16.2 -> 13.4% (v4_compressor
    18.6 -> 5.9 in the third); Intel AMX 16.8 -> 16.5%; Ice Lake and the older AMD run unchanged
    (their curves already rise with rows). Capping by the largest rate at more rows instead of the
    smallest gave 12.2 / 16.7 / 12.3 / 15.3%."""
    rates = [v for _, v in curve]
    return tuple((r, min(rates[i:])) for i, (r, _) in enumerate(curve))


PROBE_BEFORE, PROBE_AFTER = "probe_read_bytes_per_s", "probe_read_after_bytes_per_s"
PROBE_PAIRED = "probe_read_paired_bytes_per_s"  # the probe after every sample (bench/run.py interleaves_probe)


def usual_probe_bytes_per_s(measured: pd.DataFrame) -> float:
    """The run's usual probe bandwidth: the median over its timed rows (nan when not recorded)."""
    now = _probe_now(measured)
    ok = np.isfinite(now) & (now > 0)
    if "status" in measured.columns:
        ok &= measured["status"].astype(str).to_numpy() == "ok"
    return float(np.median(now[ok])) if ok.any() else math.nan


def _probe_now(measured: pd.DataFrame) -> np.ndarray:
    """Per row: the probe bandwidth while it was timed: the probe paired with every sample where the
    bench interleaved it, else the geometric mean of the probes just before and just after."""
    paired = pd.to_numeric(measured[PROBE_PAIRED], errors="coerce").to_numpy(np.float64) \
        if PROBE_PAIRED in measured.columns else np.full(len(measured), np.nan)
    if PROBE_BEFORE not in measured.columns:
        return paired
    before = pd.to_numeric(measured[PROBE_BEFORE], errors="coerce").to_numpy(np.float64)
    after = pd.to_numeric(measured[PROBE_AFTER], errors="coerce").to_numpy(np.float64) \
        if PROBE_AFTER in measured.columns else before
    after = np.where(np.isfinite(after) & (after > 0), after, before)
    with np.errstate(invalid="ignore"):
        bracket = np.sqrt(before * after)
    return np.where(np.isfinite(paired) & (paired > 0), paired, bracket)


def memory_drift(measured: pd.DataFrame, cache_bytes: float, usual_bytes_per_s: float,
                 memory_share=1.0) -> np.ndarray:
    """Per row: the factor by which the machine's DRAM bandwidth stood above (>1) or below (<1) its
    usual level while the row was timed. On a shared host the streaming bandwidth drifts by tens of
    percent over minutes (2-vCPU AMD EPYC guest: a 256 MiB read 31-56 GB/s over 24 s, while its ratio
    to an interleaved 96 MiB read stayed within a 4.5% CV), so each case is bracketed by a fixed
    probe read (bench/run.py: just before and just after its timing window; where the working set
    exceeds the cache, also after every sample, paired with it: `_probe_now`). Factor =
    (probe bandwidth of the row) / (median probe bandwidth of the
    run, `usual_probe_bytes_per_s`), raised to the DRAM-resident share of the row's working set
    (`dram_share` beyond `cache_bytes`; a cache-resident case keeps factor 1) times `memory_share`,
    the memory time's share of the row's time at the measured curves (`roofline_inputs`): a kernel
    whose time is mostly compute does not follow the bandwidth (timed beside the probe on the AMD
    guest, an MKL sgemv's time followed it with slope 0.05, a 192 MiB read's with 0.78). On the
    first run with paired probes (Zen 4 guest) the weighting moved the score 13.5 -> 12.3%, on the
    two older runs of that guest 12.3 -> 12.2% and 12.8 -> 13.4%. 1 where no probe was recorded."""
    n = len(measured)
    now = _probe_now(measured)
    ok = np.isfinite(now) & (now > 0)
    if not ok.any() or not usual_bytes_per_s > 0:
        return np.ones(n)
    cold = measured["cache_state"].astype(str).to_numpy() == "cold" if "cache_state" in measured else np.zeros(n, bool)
    ws = np.where(cold, np.inf, pd.to_numeric(measured["bytes"], errors="coerce").to_numpy(np.float64))
    share = dram_share(ws, cache_bytes) if np.isfinite(cache_bytes) else np.ones(n)
    return np.where(ok, (now / usual_bytes_per_s) ** (share * np.asarray(memory_share, dtype=np.float64)), 1.0)


def _floor_s(disp: pd.DataFrame) -> pd.Series:
    """The dispatch row's fastest sample (its median where no min_s was recorded). Dispatch time is a
    floor: a neighbour only adds to it, and the whole curve scales every small case. Two quiet runs of
    one 2-vCPU AMD EPYC guest 5 min apart: medians 2.54 and 4.72 us per op (the second run's samples
    spread 0.56-0.99 ms per call), fastest samples 2.41 and 2.81 us."""
    if "min_s" not in disp.columns:
        return disp["median_s"]
    low = pd.to_numeric(disp["min_s"], errors="coerce")
    return low.where(np.isfinite(low) & (low > 0), disp["median_s"])


MEMORY_BOUND_SHARE = 0.8  # a reference GEMM whose streaming time is at least this share of its time


def measure_curves(measured: pd.DataFrame, cache_bytes: float = math.inf,
                   drift_corrected: bool = True) -> Curves:
    """Curves from a run's reference rows: the dispatch time per op, then — net of their own dispatch
    time, which the time function adds back per op — the read bandwidth by working set (bytes read)
    and the GEMM compute rate by rows (m), from the GEMMs that are not memory-bound: a GEMV-like GEMM
    that streams its weights at the read bandwidth measures memory, not compute, and taking its rate
    as a compute rate would charge the same bytes twice.

    drift_corrected (default): the DRAM-resident share of every row's bandwidth is put at the run's
    usual level (`memory_drift`; a row without a recorded probe keeps factor 1). Four quick runs of
    one 2-vCPU AMD EPYC guest (two quiet, two while its host was busy): calibrated median |error|
    12.2 / 13.3 / 11.9 / 16.8% without, 11.5 / 13.3 / 12.6 / 13.6% with; the busy pair's repeat gap
    4.9 -> 1.0 points."""
    ok = measured[(measured["status"] == "ok") & (measured["role"] == REFERENCE)]
    disp = ok[ok["kernel"] == "dispatch"]
    overhead = float(_floor_s(disp).min() / disp["n_ops"].max()) if len(disp) and disp["n_ops"].max() > 0 else 0.0

    def net_s(df: pd.DataFrame) -> np.ndarray:
        t = df["median_s"].to_numpy(np.float64)
        n_ops = pd.to_numeric(df["n_ops"], errors="coerce").fillna(0.0).to_numpy(np.float64) \
            if "n_ops" in df.columns else np.zeros(len(df))
        return np.maximum(t - n_ops * overhead, 0.5 * t)  # never more than half a time is dispatch

    read = ok[ok["kernel"] == "read"]
    drift = memory_drift(read, cache_bytes, usual_probe_bytes_per_s(measured)) \
        if drift_corrected else np.ones(len(read))
    read = read.assign(net_bytes_per_s=read["bytes"].to_numpy(np.float64) / net_s(read) / drift)
    bw = _best(read, "bytes", "net_bytes_per_s")
    gemm = ok[ok["kernel"] == "gemm"]
    gemm = gemm.assign(net_flop_per_s=gemm["flop"].to_numpy(np.float64) / net_s(gemm))
    if len(gemm) and bw:
        stream_s = gemm["bytes"].to_numpy(np.float64) / interp_curve(gemm["bytes"].to_numpy(np.float64), bw, 1.0)
        gemm = gemm[stream_s < MEMORY_BOUND_SHARE * gemm["median_s"].to_numpy(np.float64)]
    rates = {str(dt): no_faster_than_more_rows(_best(g, "rows", "net_flop_per_s")) for dt, g in gemm.groupby("dtype")}
    return Curves(rates, bw, overhead, cache_bytes, drift_corrected)


def curves_of(hw: HardwareProfile) -> Curves | None:
    cal = hw.calibration
    return None if cal is None else Curves(cal.rate_by_rows, cal.bandwidth_by_bytes, cal.overhead_s_per_op)


def roofline_inputs(measured: pd.DataFrame, hw: HardwareProfile, curves: Curves | None) -> pd.DataFrame:
    """Per measured row: the rates the time function starts from. Speed of light: the profile's peak
    of the row's dtype and its bandwidth; calibrated: the measured curves at the row's rows and working
    set (inf when measured with a flushed cache: DRAM-resident)."""
    out = measured.copy()
    for col, default in (("rows", np.inf), ("n_ops", 0.0)):
        if col not in out.columns:
            out[col] = default
        out[col] = pd.to_numeric(out[col], errors="coerce").fillna(default)
    peaks = {dt: resolve_peak(hw, dt)[1] for dt in out["dtype"].unique()}
    out["peak_flop_per_s"] = out["dtype"].map(peaks)
    out["bandwidth_bytes_per_s"] = hw.memory_bandwidth_bytes_per_s.value
    cold = out["cache_state"].astype(str).to_numpy() == "cold" if "cache_state" in out else np.zeros(len(out), bool)
    ws = np.where(cold, np.inf, out["bytes"].to_numpy(np.float64))
    out["working_set_bytes"] = ws
    rate = np.empty(len(out))
    for dt, idx in out.groupby("dtype").indices.items():
        curve = curves.rate_by_rows.get(str(dt), ()) if curves else ()
        rate[idx] = interp_curve(out["rows"].to_numpy(np.float64)[idx], curve, peaks[dt])
    out["curve_flop_per_s"] = rate
    bw = interp_curve(ws, curves.bandwidth_by_bytes if curves else (), hw.memory_bandwidth_bytes_per_s.value)
    out["memory_drift"] = memory_drift(out, curves.cache_bytes, usual_probe_bytes_per_s(out),
                                       _memory_share(out, rate, bw)) \
        if curves is not None and curves.drift_corrected else 1.0
    out["curve_bytes_per_s"] = bw * out["memory_drift"]
    out["overhead_s"] = out["n_ops"].to_numpy(np.float64) * (curves.overhead_s_per_op if curves else 0.0)
    return out


def _memory_share(rows: pd.DataFrame, rate_flop_per_s: np.ndarray, bandwidth_bytes_per_s: np.ndarray) -> np.ndarray:
    """Per row: the memory time's share of compute + memory time at the measured curves (no fitted
    factor): 1 for a read, ~0.1-0.2 for an SDPA decode whose FLOPs run at the skinny-GEMM rate."""
    m = rows["bytes"].to_numpy(np.float64) / bandwidth_bytes_per_s
    c = rows["flop"].to_numpy(np.float64) / rate_flop_per_s
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(m / (m + c), nan=1.0)


def _calibrated_s(rows: pd.DataFrame, compute_eff, memory_eff, overlap_exponent: float) -> np.ndarray:
    """`time_s` at the rows' curve rates (looked up once in roofline_inputs) with per-row efficiencies."""
    eff = Efficiency(compute=compute_eff, memory=memory_eff, overlap_exponent=overlap_exponent, overhead_s=1.0)
    _, _, t = time_s(rows["flop"].to_numpy(), rows["bytes"].to_numpy(), rows["curve_flop_per_s"].to_numpy(),
                     rows["curve_bytes_per_s"].to_numpy(), eff, n_ops=rows["overhead_s"].to_numpy(),
                     working_set_bytes=rows["working_set_bytes"].to_numpy())
    return t


def predict(rows: pd.DataFrame, fit: Fit | None) -> np.ndarray:
    """Predicted seconds per row: speed of light (fit None) or calibrated, through `time_s`."""
    if fit is None:
        _, _, t = time_s(rows["flop"].to_numpy(), rows["bytes"].to_numpy(), rows["peak_flop_per_s"].to_numpy(),
                         rows["bandwidth_bytes_per_s"].to_numpy(), Efficiency())
        return t
    fam = rows["family"].astype(str)
    return _calibrated_s(rows, fam.map(lambda f: fit.compute_efficiency.get(f, 1.0)).to_numpy(np.float64),
                         fam.map(lambda f: fit.memory_efficiency.get(f, 1.0)).to_numpy(np.float64),
                         fit.overlap_exponent)


def fit(rows: pd.DataFrame, start: np.ndarray | None = None) -> tuple[Fit, np.ndarray]:
    """Least squares on log(predicted / measured), soft-L1 against a few outliers, with a weak prior
    of efficiency 1 (an unidentified factor stays near the measured curve instead of drifting)."""
    from scipy.optimize import least_squares  # scipy only when fitting

    fams = sorted(rows["family"].astype(str).unique())
    F = len(fams)
    idx = rows["family"].astype(str).map({f: i for i, f in enumerate(fams)}).to_numpy()
    log_t = np.log(rows["median_s"].to_numpy())

    def residuals(theta: np.ndarray) -> np.ndarray:
        ce, me, p = np.exp(theta[:F]), np.exp(theta[F:2 * F]), np.exp(theta[-1])
        pred = _calibrated_s(rows, ce[idx], me[idx], p)
        return np.r_[np.log(pred) - log_t, PRIOR_WEIGHT * theta[:2 * F]]

    lo = np.r_[np.full(2 * F, np.log(EFFICIENCY_BOUNDS[0])), np.log(OVERLAP_BOUNDS[0])]
    hi = np.r_[np.full(2 * F, np.log(EFFICIENCY_BOUNDS[1])), np.log(OVERLAP_BOUNDS[1])]
    x0 = np.clip(start if start is not None and len(start) == 2 * F + 1 else np.r_[np.zeros(2 * F), np.log(2.0)],
                 lo + 1e-9, hi - 1e-9)
    res = least_squares(residuals, x0, loss="soft_l1", f_scale=0.1, bounds=(lo, hi))
    th = res.x
    return Fit({f: float(np.exp(th[i])) for i, f in enumerate(fams)},
               {f: float(np.exp(th[F + i])) for i, f in enumerate(fams)}, float(np.exp(th[-1]))), th


def scored(rows: pd.DataFrame) -> pd.DataFrame:
    role = rows["role"] if "role" in rows.columns else pd.Series(CASE, index=rows.index)
    return rows[role.astype(str) != REFERENCE].reset_index(drop=True)


def leave_one_out(rows: pd.DataFrame) -> pd.DataFrame:
    """Both modes for every scored case; the calibrated prediction of a case comes from a fit without it."""
    rows = scored(rows)
    _, theta_all = fit(rows)
    calibrated = np.empty(len(rows))
    for i in range(len(rows)):
        train = rows.drop(index=i)
        f, _ = fit(train, _subset_start(theta_all, rows, train))
        calibrated[i] = predict(rows.iloc[[i]], f)[0]
    frames = []
    for mode, pred in ((Mode.SPEED_OF_LIGHT.value, predict(rows, None)), (Mode.CALIBRATED.value, calibrated)):
        f = rows.copy()
        f["mode"] = mode
        f["measured_s"] = rows["median_s"]
        f["predicted_s"] = pred
        f["error_pct"] = (pred - rows["median_s"]) / rows["median_s"] * 100.0
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def _subset_start(theta: np.ndarray, full: pd.DataFrame, train: pd.DataFrame) -> np.ndarray:
    """The full fit's parameters restricted to the families still present (a warm start)."""
    fams = sorted(full["family"].astype(str).unique())
    keep = sorted(train["family"].astype(str).unique())
    F = len(fams)
    pick = [fams.index(f) for f in keep]
    return np.r_[theta[pick], theta[[F + i for i in pick]], theta[-1]]


def _stats(g: pd.DataFrame) -> dict:
    abs_err = g["error_pct"].abs()
    return {
        "n": len(g),
        "n_noisy": int(g["noisy"].sum()) if "noisy" in g.columns else 0,
        "mdape_pct": float(abs_err.median()),
        "mape_pct": float(abs_err.mean()),
        "within_25_pct": float((abs_err <= WITHIN_PCT).mean() * 100.0),
        "bias": float(np.exp(np.mean(np.log(g["measured_s"] / g["predicted_s"])))),
    }


def summarise(cases: pd.DataFrame) -> pd.DataFrame:
    """Per mode, subset (all cases; quiet = without the cases flagged noisy) and family (and `all`):
    n, noisy count, median and mean |error| %, share within ±25 %, bias = geometric mean of measured
    / predicted (> 1: the model is optimistic)."""
    out = []
    noisy = cases["noisy"].astype(bool) if "noisy" in cases.columns else pd.Series(False, index=cases.index)
    for mode in (m.value for m in Mode):
        for subset, sel in (("all", np.ones(len(cases), bool)), ("quiet", ~noisy.to_numpy())):
            if subset == "quiet" and not noisy.any():
                continue  # no case flagged noisy: the quiet subset is the whole set
            g = cases[(cases["mode"] == mode).to_numpy() & sel]
            if g.empty:
                continue
            out.append({"mode": mode, "subset": subset, "family": "all", **_stats(g)})
            for fam, gf in g.groupby("family"):
                out.append({"mode": mode, "subset": subset, "family": str(fam), **_stats(gf)})
    return pd.DataFrame(out)


def calibration_block(curves: Curves, f: Fit, run_id: str, n_cases: int) -> dict:
    """The `calibration:` mapping a hardware profile stores (read by `simulators.hardware`)."""
    sig = lambda x: float(f"{x:.5g}")  # noqa: E731 - measured and fitted to 5 significant digits
    suspect = sorted({k for d in (f.compute_efficiency, f.memory_efficiency) for k, v in d.items()
                      if v > SUSPECT_EFFICIENCY})
    return {
        "run_id": run_id,
        "version": CALIBRATION_VERSION,
        "rate_by_rows": {dt: [[sig(x), sig(y)] for x, y in c] for dt, c in curves.rate_by_rows.items()},
        "bandwidth_by_bytes": [[sig(x), sig(y)] for x, y in curves.bandwidth_by_bytes],
        "overhead_s_per_op": sig(curves.overhead_s_per_op),
        "compute_efficiency": {k: sig(v) for k, v in f.compute_efficiency.items()},
        "memory_efficiency": {k: sig(v) for k, v in f.memory_efficiency.items()},
        "overlap_exponent": sig(f.overlap_exponent) if math.isfinite(f.overlap_exponent) else ".inf",
        "fit": {"scored_cases": int(n_cases), "parameters": 2 * len(f.compute_efficiency) + 1,
                "suspect_families": suspect},
    }


def calibration_of(block: dict) -> Calibration:
    from .hardware import _calibration

    return _calibration(block, "calibration")
