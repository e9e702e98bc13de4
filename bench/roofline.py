"""Measured rows against a hardware profile's roofline (the simulator's op_time, speed-of-light mode)."""

from __future__ import annotations

import pandas as pd

from simulators.hardware import HardwareProfile
from simulators.roofline import op_time, resolve_peak

ROOFLINE_COLUMNS = ["case_id", "hardware", "compute_dtype", "compute_time_s", "memory_time_s", "roofline_time_s",
                    "bound", "fraction_of_roofline", "fraction_of_peak_flop", "fraction_of_bandwidth"]


def roofline_frame(measured: pd.DataFrame, hw: HardwareProfile) -> pd.DataFrame:
    """One row per ok case: roofline time max(flop/peak, bytes/bandwidth) and the measured fractions
    (roofline time / measured median; achieved FLOP/s / peak; achieved bytes/s / bandwidth)."""
    ok = measured[measured["status"] == "ok"]
    rows = []
    bw = hw.memory_bandwidth_bytes_per_s.value
    for r in ok.itertuples(index=False):
        t = op_time(r.flop, r.bytes, r.family, r.dtype, hw)
        roof_s = float(t.time_s)
        peak = resolve_peak(hw, r.dtype)[1]
        rows.append({
            "case_id": r.case_id,
            "hardware": hw.name,
            "compute_dtype": t.compute_dtype,
            "compute_time_s": float(t.compute_time_s),
            "memory_time_s": float(t.memory_time_s),
            "roofline_time_s": roof_s,
            "bound": "compute" if bool(t.compute_bound) else "memory",
            "fraction_of_roofline": roof_s / r.median_s,
            "fraction_of_peak_flop": r.achieved_flop_per_s / peak,
            "fraction_of_bandwidth": r.achieved_bytes_per_s / bw,
        })
    return pd.DataFrame(rows, columns=ROOFLINE_COLUMNS)
