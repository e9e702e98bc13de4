"""Calibration rows (gemm / copy families of measured.csv) -> a hardware profile YAML in the schema
`simulators.hardware.load_profile` reads, every number `status: measured` with its run id."""

from __future__ import annotations

from typing import Any

import pandas as pd

from simulators.hardware import PEAK_DTYPES


def _sig(x: float, digits: int = 4) -> float:
    """Measured rates to 4 significant digits: run-to-run noise is larger than that."""
    return float(f"{x:.{digits}g}")


def _fmt_rate(x: float, unit: str) -> str:
    return f"{x / 1e9:.1f} G{unit}"


def _reference_gemms(measured: pd.DataFrame) -> pd.DataFrame:
    """GEMM rows that define the peaks (role reference; older runs have no role: every GEMM)."""
    ok = measured[(measured["status"] == "ok") & (measured["kernel"] == "gemm")]
    return ok[ok["role"].astype(str) != "case"] if "role" in ok.columns else ok


def square_gemms(measured: pd.DataFrame) -> pd.DataFrame:
    ok = _reference_gemms(measured)
    return ok[(ok["m"] == ok["n"]) & (ok["n"] == ok["k"])]


def skinny_gemms(measured: pd.DataFrame) -> pd.DataFrame:
    ok = _reference_gemms(measured)
    return ok[ok["m"] < ok["n"]].sort_values(["dtype", "n", "m"])


def peaks(measured: pd.DataFrame, origin: str) -> dict[str, dict[str, Any]]:
    """Per dtype: the best median over the square GEMMs (each a median of its samples)."""
    out: dict[str, dict[str, Any]] = {}
    sq = square_gemms(measured)
    for dtype, grp in sq.groupby("dtype"):
        if dtype not in PEAK_DTYPES:
            continue
        best = grp.loc[grp["achieved_flop_per_s"].idxmax()]
        sizes = ", ".join(f"n={int(n)}: {_fmt_rate(v, 'FLOP/s')}" for n, v in zip(grp["n"], grp["achieved_flop_per_s"]))
        out[str(dtype)] = {
            "value": _sig(best["achieved_flop_per_s"]),
            "status": "measured",
            "source": f"{origin}: best median of {dtype} square GEMM n={int(best['n'])}",
            "note": f"medians by size: {sizes}",
        }
    return out


def bandwidth(measured: pd.DataFrame, origin: str, llc_bytes: int | None = None) -> dict[str, Any] | None:
    """The best streaming read (bytes/s) over the reference sizes that exceed the last-level cache (or
    all sizes when none does): the DRAM bandwidth of the speed-of-light roofline. Cache-resident sizes
    go to the calibration's bandwidth curve instead."""
    ok = measured[(measured["status"] == "ok") & (measured["kernel"] == "read")]
    if "role" in ok.columns:
        ok = ok[ok["role"].astype(str) != "case"]
    if ok.empty:
        return None
    dram = ok[ok["n_bytes"] > 2 * llc_bytes] if llc_bytes else ok
    dram = dram if not dram.empty else ok
    best = dram.loc[dram["achieved_bytes_per_s"].idxmax()]
    sizes = ", ".join(f"{int(n) / 2**20:.0f} MiB: {_fmt_rate(v, 'B/s')}"
                      for n, v in zip(ok["n_bytes"], ok["achieved_bytes_per_s"]))
    return {
        "value": _sig(best["achieved_bytes_per_s"]),
        "status": "measured",
        "source": (f"{origin}: median of streaming read ({best.get('variant') or 'read'}) over "
                   f"{int(best['n_bytes']) / 2**20:.0f} MiB"),
        "note": f"reads by size: {sizes}",
    }


def skinny_notes(measured: pd.DataFrame) -> list[str]:
    """One line per skinny GEMM: machine-readable key and achieved rate by M."""
    return [f"skinny_gemm_{r.dtype}_n{int(r.n)}_k{int(r.k)}_m{int(r.m)}_flop_per_s: {r.achieved_flop_per_s:.4g}"
            for r in skinny_gemms(measured).itertuples(index=False)]


def build_profile(measured: pd.DataFrame, run_id: str, env: dict, *, name: str = "host-measured",
                  tool: str = "daedalus calibrate", extra_notes: list[str] | None = None) -> dict[str, Any]:
    """The profile mapping; every value `status: measured`, its source naming `<tool> run <run_id>`."""
    origin = f"{tool} run {run_id}"
    pk = peaks(measured, origin)
    bw = bandwidth(measured, origin, (env.get("cpu_cache_bytes") or {}).get("L3"))
    if not pk or bw is None:
        raise RuntimeError("calibration produced no square GEMM or streaming result to build a profile from")
    mem = env.get("device_memory_bytes")
    kind = env.get("device", "cpu")
    prof: dict[str, Any] = {
        "name": name,
        "aliases": [],
        "display_name": f"{env.get('device_name', kind)} (measured by daedalus calibrate)",
        "vendor": "host" if kind == "cpu" else kind,
        "peak_flop_per_s": pk,
        "memory_bytes": {"value": int(mem), "status": "measured",
                         "source": f"{origin}: total memory reported by the "
                                   f"{'OS (sysconf)' if kind == 'cpu' else 'device runtime'}"},
        "memory_bandwidth_bytes_per_s": bw,
    }
    llc = (env.get("cpu_cache_bytes") or {}).get("L3") if kind == "cpu" else env.get("device_llc_bytes")
    if llc:
        reporter = "OS (sysfs, as the guest sees it)" if kind == "cpu" else "device runtime"
        prof["onchip_cache_bytes"] = {"value": int(llc), "status": "measured",
                                      "source": f"{origin}: last-level cache size reported by the {reporter}",
                                      "note": "size as reported, not a measured effective (shared) capacity"}
    lines = [
        f"Measured by `{tool}` run {run_id} on {env.get('device_name')} ({kind}), "
        f"{env.get('threads')} threads, torch {env.get('torch')}, at {env.get('time_utc')}.",
        "Peaks are achievable medians (not datasheet); timing medians over repeats with a noise probe.",
        "Skinny GEMM achieved rates by M (C[M,N] = A[M,K] @ B[K,N]):",
        *[f"  {s}" for s in skinny_notes(measured)],
        *(extra_notes or []),
    ]
    prof["notes"] = "\n".join(lines) + "\n"
    return prof
