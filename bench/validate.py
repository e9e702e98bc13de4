"""Measured vs predicted: join per case, fit a calibrated roofline, cross-validate, summarise.

Pure pandas/numpy/scipy (no torch, no matplotlib). Two prediction modes side by side:
- speed_of_light: time = max(flop / peak[dtype], bytes / bandwidth) on the run's measured profile
  (or datasheet peaks for another profile);
- calibrated: per family f, with c = flop / (peak * ce_f) and m = bytes / (bw * me_f * k),
  time = (c**p_f + m**p_f) ** (1/p_f) + overhead_f, where k = cache_f when the case's bytes fit in the
  profile's onchip_cache_bytes (and the case was not measured with a flushed cache), else 1. p_f in [1, 8]
  is the compute/memory overlap exponent (1: no overlap, sum; large: max). The same form
  `simulators.roofline` evaluates in mode `calibrated`. Parameters are fitted on k-1 folds and scored
  on the held-out fold (never on what they were fitted on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from simulators.hardware import HardwareProfile
from simulators.roofline import ALL_FAMILIES, combine, fits_in_cache, resolve_peak

MODES = ("speed_of_light", "calibrated")
MIN_ROWS_PER_FAMILY = 4  # fewer training rows: the pooled fit's shape, rescaled to the family's rows
WITHIN_PCT = 25.0
# Bounds on fitted factors: efficiency may exceed 1 for memory when data sits in cache.
BOUNDS_LOW = np.log([1e-3, 1e-3])
BOUNDS_HIGH = np.log([2.0, 20.0])
MAX_OVERHEAD_S = 0.05
OVERLAP_BOUNDS = (1.0, 8.0)
CACHE_FACTOR_BOUNDS = (1.0, 8.0)


@dataclass(frozen=True)
class FamilyFit:
    compute_efficiency: float
    memory_efficiency: float
    overhead_s: float
    overlap_exponent: float = float("inf")  # inf: max (the classic roofline)
    cache_factor: float = 1.0


def roofline_inputs(measured: pd.DataFrame, hw: HardwareProfile) -> pd.DataFrame:
    """Adds ideal compute and memory times (at 100% of the profile's peaks) to each measured row, and
    whether its working set sits in the on-chip cache (fits, and not measured with a flushed cache)."""
    out = measured.copy()
    peaks = {dt: resolve_peak(hw, dt)[1] for dt in out["dtype"].unique()}
    out["peak_flop_per_s"] = out["dtype"].map(peaks)
    out["ideal_compute_s"] = out["flop"] / out["peak_flop_per_s"]
    out["ideal_memory_s"] = out["bytes"] / hw.memory_bandwidth_bytes_per_s.value
    in_cache = fits_in_cache(out["bytes"].to_numpy(), hw)
    if "cache_state" in out.columns:
        in_cache &= out["cache_state"].astype(str).to_numpy() != "cold"
    out["in_cache"] = in_cache
    return out


def _in_cache(rows: pd.DataFrame) -> np.ndarray:
    if "in_cache" in rows.columns:
        return rows["in_cache"].to_numpy(dtype=bool)
    return np.zeros(len(rows), dtype=bool)


def predict(rows: pd.DataFrame, fit: FamilyFit | None) -> np.ndarray:
    c, m = rows["ideal_compute_s"].to_numpy(), rows["ideal_memory_s"].to_numpy()
    if fit is None:
        return np.maximum(c, m)
    k = np.where(_in_cache(rows), fit.cache_factor, 1.0)
    return combine(c / fit.compute_efficiency, m / (fit.memory_efficiency * k), fit.overlap_exponent) + fit.overhead_s


def fit_family(rows: pd.DataFrame, overlap: bool = True, cache: bool = True) -> FamilyFit:
    """Least squares on log(predicted / measured), robust to a few outliers (soft L1). Fits ce, me and
    overhead, plus the overlap exponent p (`overlap`) and the cache factor (`cache`, only when the rows
    hold both cached and uncached cases, else 1)."""
    c = rows["ideal_compute_s"].to_numpy()
    m = rows["ideal_memory_s"].to_numpy()
    t = rows["median_s"].to_numpy()
    in_cache = _in_cache(rows)
    fit_cache = cache and in_cache.any() and (~in_cache).any()

    def unpack(theta: np.ndarray) -> FamilyFit:
        i = 3
        p = float("inf")
        if overlap:
            p, i = float(np.exp(theta[i])), i + 1
        cf = float(np.exp(theta[i])) if fit_cache else 1.0
        return FamilyFit(float(np.exp(theta[0])), float(np.exp(theta[1])), float(theta[2]), p, cf)

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.log(predict(rows, unpack(theta))) - np.log(t)

    # start from the median achieved fraction of each roof
    ce0 = np.clip(np.median(np.where(c > 0, c / t, np.nan)[c > 0]) if (c > 0).any() else 1.0, 1e-3, 2.0)
    me0 = np.clip(np.median(m / t), 1e-3, 20.0)
    x0 = [np.log(ce0), np.log(me0), min(float(np.min(t)) * 0.1, MAX_OVERHEAD_S)]
    lo, hi = list(np.r_[BOUNDS_LOW, 0.0]), list(np.r_[BOUNDS_HIGH, MAX_OVERHEAD_S])
    for on, bounds, start in ((overlap, OVERLAP_BOUNDS, 2.0), (fit_cache, CACHE_FACTOR_BOUNDS, 1.5)):
        if on:
            x0.append(np.log(start))
            lo.append(np.log(bounds[0]))
            hi.append(np.log(bounds[1]))
    res = least_squares(residuals, np.array(x0), loss="soft_l1", f_scale=0.1, bounds=(lo, hi))
    return unpack(res.x)


def rescale(rows: pd.DataFrame, base: FamilyFit) -> FamilyFit:
    """`base`'s shape (overlap, cache factor, ce:me ratio) with one scale fitted to `rows`: the
    geometric-median ratio measured / predicted (for families with too few rows for their own fit)."""
    pred = predict(rows, base)
    s = float(np.exp(np.median(np.log(rows["median_s"].to_numpy() / pred))))
    return FamilyFit(base.compute_efficiency / s, base.memory_efficiency / s, base.overhead_s * s,
                     base.overlap_exponent, base.cache_factor)


def fit_all(rows: pd.DataFrame) -> dict[str, FamilyFit]:
    """One fit per family (its own with enough rows, else the pooled fit rescaled to its rows), plus
    the pooled fit under ALL_FAMILIES for families never measured."""
    pooled = fit_family(rows)
    fits = {ALL_FAMILIES: pooled}
    for fam, grp in rows.groupby("family"):
        fits[str(fam)] = fit_family(grp) if len(grp) >= MIN_ROWS_PER_FAMILY else rescale(grp, pooled)
    return fits


def fold_ids(rows: pd.DataFrame, k: int, seed: int = 0) -> np.ndarray:
    """Stratified by family: each family's cases are dealt round-robin into k folds after a
    seeded shuffle, so every fold holds some of every family."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(rows), dtype=np.int64)
    for _, idx in rows.groupby("family").indices.items():
        idx = rng.permutation(idx)
        folds[idx] = np.arange(len(idx)) % k
    return folds


def cross_validate(rows: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Both modes for every case; calibrated predictions come from fits without the case's fold."""
    rows = rows.reset_index(drop=True)
    folds = fold_ids(rows, k)
    calibrated = np.empty(len(rows))
    for f in range(k):
        test = folds == f
        if not test.any():
            continue
        fits = fit_all(rows[~test])
        for fam, grp in rows[test].groupby("family"):
            fit = fits.get(str(fam), fits[ALL_FAMILIES])
            calibrated[grp.index.to_numpy()] = predict(grp, fit)
    frames = []
    for mode, pred in (("speed_of_light", predict(rows, None)), ("calibrated", calibrated)):
        f = rows.copy()
        f["mode"] = mode
        f["fold"] = folds if mode == "calibrated" else -1
        f["measured_s"] = rows["median_s"]
        f["predicted_s"] = pred
        f["error_pct"] = (pred - rows["median_s"]) / rows["median_s"] * 100.0
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def summarise(cases: pd.DataFrame) -> pd.DataFrame:
    """Per mode and family (and `all`): n, median and mean |error| %, share within ±25 %, and
    bias = geometric mean of measured / predicted (> 1: the model is optimistic)."""

    def stats(g: pd.DataFrame) -> dict:
        abs_err = g["error_pct"].abs()
        return {
            "n": len(g),
            "mdape_pct": float(abs_err.median()),
            "mape_pct": float(abs_err.mean()),
            "within_25_pct": float((abs_err <= WITHIN_PCT).mean() * 100.0),
            "bias": float(np.exp(np.mean(np.log(g["measured_s"] / g["predicted_s"])))),
        }

    out = []
    for mode in MODES:
        g = cases[cases["mode"] == mode]
        if g.empty:
            continue
        out.append({"mode": mode, "family": ALL_FAMILIES, **stats(g)})
        for fam, gf in g.groupby("family"):
            out.append({"mode": mode, "family": str(fam), **stats(gf)})
    return pd.DataFrame(out)


def calibration_block(fits: dict[str, FamilyFit], run_id: str) -> dict:
    """The `calibration:` mapping a hardware profile stores (read by simulators.hardware)."""
    return {
        "run_id": run_id,
        "compute_efficiency": {k: round(v.compute_efficiency, 6) for k, v in fits.items()},
        "memory_efficiency": {k: round(v.memory_efficiency, 6) for k, v in fits.items()},
        "overhead_s": {k: float(f"{v.overhead_s:.6g}") for k, v in fits.items()},
        "overlap_exponent": {k: round(v.overlap_exponent, 4) for k, v in fits.items()},
        "cache_bandwidth_factor": {k: round(v.cache_factor, 4) for k, v in fits.items()},
    }
