"""What to buy: per hardware profile, the smallest disaggregated deployment (a prefill unit and a
decode unit) that meets TTFT / TPOT targets (and a request rate), with its throughput, bottleneck
and cost; the decode Pareto front (tokens/s per device vs per user) for the plot.

Candidates are costed by `simulators.sizing`; this module selects and assembles the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .comm import Fabric
from .errors import ConfigError
from .hardware import HardwareProfile
from .model_config import ModelConfig
from .parallel import device_precision
from .precision import Precision, expert_compute_note
from .sizing import (
    DEFAULT_MAX_DEVICES,
    OBJECTIVES,
    PlanOptions,
    Workload,
    candidates,
    evaluate,
    evaluate_layout,
    with_cap_rows,
)

__all__ = ["DEFAULT_MAX_DEVICES", "OBJECTIVES", "PlanOptions", "PlanResult", "Workload", "candidates", "evaluate",
           "evaluate_layout", "ms_text", "pareto_front", "plan", "plan_hardware", "select"]

SECONDS_PER_HOUR = 3600.0
TOKENS_PER_MTOK = 1e6


# ------------------------------------------------------------------------------------- select

LAYOUT_KEYS = ["devices", "tp", "dp", "pp", "ep"]


def ms_text(seconds: float) -> str:
    """Milliseconds for a sentence: 3 significant digits, never an exponent (1,678 ms, 49.4 ms)."""
    ms = seconds * 1e3
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def _layout_name(r) -> str:
    return f"tp{int(r['tp'])} dp{int(r['dp'])} ep{int(r['ep'])} pp{int(r['pp'])}"


def _why(best: pd.Series, ok: pd.DataFrame, fit: pd.DataFrame, phase: str, wl: Workload, opt: PlanOptions,
         lat_col: str, what: str, target) -> str:
    """One line: why this layout and batch, and what the next smaller unit lacked."""
    lay = _layout_name(best)
    goal = "fewest devices" if opt.objective == "devices" else "most tokens/s per device"
    target_txt = "" if target is None else f" meeting {what} {target * 1e3:g} ms"
    stop = ("memory full (batch cap {:g})".format(best["batch_cap"]) if best["batch"] >= np.floor(best["batch_cap"])
            else f"{what} {ms_text(best[lat_col])} at the largest batch under the target")
    smaller = fit[fit["devices"] < best["devices"]]
    if smaller.empty:
        nxt = "no smaller unit holds the weights and KV"
    else:
        s_best = smaller.loc[smaller[lat_col].idxmin()]
        nxt = (f"smaller units miss {what}: best {ms_text(s_best[lat_col])} on {int(s_best['devices'])} devices "
               f"({_layout_name(s_best)})") if target is not None and s_best[lat_col] > target else \
            "smaller units need more of them for the request rate"
    policy = best.get("eplb_policy", "")
    experts = f"; experts: {policy}" if isinstance(policy, str) and policy else ""
    return (f"{phase}: {goal}{target_txt}: {int(best['units'])} x {int(best['devices'])} devices ({lay}), batch "
            f"{best['batch']:g} per group{experts}; batch stopped by {stop}; {nxt}")


def select(df: pd.DataFrame, phase: str, wl: Workload, opt: PlanOptions) -> tuple[pd.Series | None, str]:
    """The chosen candidate of one phase, or None and the reason in one line."""
    lat_col, target, what = (("tpot_s", wl.tpot_s, "TPOT") if phase == "decode" else ("ttft_s", wl.ttft_s, "TTFT"))
    fit = df[df["fits"] & (df["batch"] >= 1)]
    if fit.empty:
        context = wl.context_max if phase == "decode" else wl.input_len
        reach = int(df["devices"].max()) if len(df) else 0
        limit = f"up to {reach} devices" + ("" if reach >= opt.max_devices else
                                            " (no scale-out link: one scale-up domain)")
        least = df["weight_bytes_per_device"].min() / 1e9 if len(df) else float("nan")
        return None, (f"{phase}: weights + KV for one sequence of {context} tokens do not fit on {limit}; "
                      f"weights alone need {least:.0f} GB per device at best")
    ok = fit if target is None else fit[fit[lat_col] <= target]
    if ok.empty:
        best = fit.loc[fit[lat_col].idxmin()]
        return None, (f"{what} {target * 1e3:g} ms not met: best {ms_text(best[lat_col])} on "
                      f"{int(best['devices'])} devices ({_layout_name(best)}, batch {best['batch']:g}, "
                      f"{best['bound']}-bound)")
    per_layout = ok.sort_values("batch").groupby(LAYOUT_KEYS, as_index=False).tail(1).copy()
    unit_rate = per_layout["tokens_per_s_per_device"] * per_layout["devices"]  # tokens/s of one unit
    if wl.request_rate_per_s is None:
        per_layout["units"] = 1
    else:
        tokens_per_request = wl.output_len if phase == "decode" else wl.input_len
        per_layout["units"] = np.ceil(wl.request_rate_per_s * tokens_per_request / unit_rate).astype(int)
    per_layout["total_devices"] = per_layout["units"] * per_layout["devices"]
    if opt.objective == "devices":
        order = per_layout.sort_values(["total_devices", "tokens_per_s_per_device"], ascending=[True, False])
    else:
        order = per_layout.sort_values(["tokens_per_s_per_device", "total_devices"], ascending=[False, True])
    best = order.iloc[0].copy()
    # the batch stopped growing because memory is full, not because of the latency target
    capacity_bound = best["batch"] >= np.floor(best["batch_cap"])
    best["bottleneck"] = "capacity" if capacity_bound else best["bound"]
    best["why"] = _why(best, ok, fit, phase, wl, opt, lat_col, what, target)
    return best, ""


# --------------------------------------------------------------------------------------- plan


@dataclass
class PlanResult:
    table: pd.DataFrame  # one row per hardware, ranked
    pareto: pd.DataFrame  # decode Pareto front per hardware: tokens/s per device vs per user
    candidates: dict[str, pd.DataFrame] = field(default_factory=dict)


def pareto_front(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows not dominated in (x, y), both larger-is-better, sorted by x."""
    d = df.sort_values([x, y], ascending=[False, False])
    keep = d[y].to_numpy() > np.maximum.accumulate(np.r_[-np.inf, d[y].to_numpy()[:-1]])
    return d[keep].sort_values(x)


def _price(hw: HardwareProfile, opt: PlanOptions) -> float | None:
    """$ per device-hour: the --price-per-hour override for this device kind, else the profile's."""
    override = dict(opt.price_usd_per_hour)
    if hw.name in override:
        return override[hw.name]
    return None if hw.price_usd_per_hour is None else hw.price_usd_per_hour.value


def _hash_note(m: ModelConfig, opt: PlanOptions) -> str:
    """The token-frequency assumption behind the hash-routed layers' load ('' without such layers)."""
    n = m.moe_routing_layers.get("hash", 0) if m.is_moe else 0
    if not n:
        return ""
    source = ("default estimate; --token-zipf to change" if opt.token_zipf_exponent is None
              else "exponent as given")
    return (f"{n} hash-routed MoE layers: expert load from a Zipf({opt.token_zipf:g}) token frequency "
            f"over a seeded hash table ({source})")


def plan_hardware(m: ModelConfig, p: Precision, hw: HardwareProfile, wl: Workload,
                  opt: PlanOptions) -> tuple[dict, pd.DataFrame]:
    """One table row and the decode Pareto front for one hardware profile."""
    nominal = Fabric.from_profile(hw)
    row: dict = {"hardware": hw.name, "feasible": False, "reason": ""}
    chosen: dict[str, pd.Series | None] = {}
    reasons = []
    front = pd.DataFrame()
    assumed: list[str] = list(nominal.assumed)
    for phase in ("decode", "prefill"):
        fabric = Fabric.achievable(hw, phase) if opt.mode == "achievable" else nominal
        assumed += [a for a in fabric.assumed if a not in assumed]
        layout = opt.decode_layout if phase == "decode" else opt.prefill_layout
        batch = opt.decode_batch if phase == "decode" else opt.prefill_batch
        cand = candidates(m, fabric, phase, opt.max_devices, layout, batch)
        if cand.empty:
            chosen[phase] = None
            reasons.append(f"{phase}: no layout of {m.name} fits the fabric")
            continue
        popt = opt if layout is None else replace(opt, redundant_experts=layout.redundant_experts)
        df = with_cap_rows(m, p, hw, fabric, cand, phase, wl, popt, pinned_batch=batch is not None)
        best, why = select(df, phase, wl, opt)
        chosen[phase] = best
        if why:
            reasons.append(why)
        if phase == "decode":
            fit = df[df["fits"] & (df["batch"] >= 1)]
            if not fit.empty:
                front = pareto_front(fit, "tokens_per_s_per_user", "tokens_per_s_per_device")
                front = front[LAYOUT_KEYS + ["batch", "concurrency", "tpot_s", "tokens_per_s_per_user",
                                             "tokens_per_s_per_device", "bound"]].assign(hardware=hw.name)
    dec, pre = chosen.get("decode"), chosen.get("prefill")
    price = _price(hw, opt)
    row["feasible"] = dec is not None and pre is not None
    row["reason"] = "; ".join(reasons)
    nan = float("nan")

    def get(s: pd.Series | None, key: str, default=nan):
        return default if s is None else s[key]

    dec_units, pre_units = get(dec, "units", nan), get(pre, "units", nan)
    row.update({
        "devices": get(dec, "total_devices") + get(pre, "total_devices"),
        "decode_devices": get(dec, "devices"), "decode_units": dec_units,
        "prefill_devices": get(pre, "devices"), "prefill_units": pre_units,
        "tp": get(dec, "tp"), "ep": get(dec, "ep"), "dp": get(dec, "dp"), "pp": get(dec, "pp"),
        "prefill_tp": get(pre, "tp"), "prefill_ep": get(pre, "ep"), "prefill_dp": get(pre, "dp"),
        "prefill_pp": get(pre, "pp"),
        "batch_per_device": get(dec, "concurrency") / get(dec, "devices"),
        "concurrency": get(dec, "concurrency"),
        "decode_tokens_per_s_per_device": get(dec, "tokens_per_s_per_device"),
        "prefill_tokens_per_s_per_device": get(pre, "tokens_per_s_per_device"),
        "tokens_per_s_per_user": get(dec, "tokens_per_s_per_user"),
        "ttft_s": get(pre, "ttft_s"), "tpot_s": get(dec, "tpot_s"),
        "bottleneck": get(dec, "bottleneck", None), "prefill_bottleneck": get(pre, "bottleneck", None),
        "decode_step_s": get(dec, "step_s"), "decode_roofline_s": get(dec, "roofline_s"),
        "decode_comm_s": get(dec, "comm_s"), "prefill_comm_s": get(pre, "comm_s"),
        "weight_bytes_per_device": get(dec, "weight_bytes_per_device"),
        "kv_bytes_per_device": get(dec, "kv_bytes_per_device"),
        "memory_bytes_per_device": get(dec, "memory_bytes_per_device"),
        "price_usd_per_hour": price,
        "usd_per_mtok_input": nan if price is None else
        price / SECONDS_PER_HOUR / get(pre, "tokens_per_s_per_device") * TOKENS_PER_MTOK,
        "assumptions": ",".join(assumed + [f"{f} (default derate)" for f in hw.achievable.assumed
                                           if opt.mode == "achievable" and not f.startswith("scale")
                                           and f != "all_reduce_bandwidth"]
                                + [n for n in (expert_compute_note(device_precision(p, hw), hw),
                                               _hash_note(m, opt)) if n]),
        "mode": opt.mode, "overlap": opt.overlap,
        "decode_why": get(dec, "why", ""), "prefill_why": get(pre, "why", ""),
    })
    for key in ("compute_bound_s", "memory_bound_s", "straggler_s", "exposed_comm_s", "step_s"):
        row[f"decode_{key}"] = get(dec, key)
        row[f"prefill_{key}"] = get(pre, key)
    row["decode_straggler_factor"] = get(dec, "straggler_factor")
    # the fleet: prefill and decode devices together serve the sustained request rate
    req_dec = get(dec, "tokens_per_s_per_device") * get(dec, "total_devices") / wl.output_len
    req_pre = get(pre, "tokens_per_s_per_device") * get(pre, "total_devices") / wl.input_len
    sustained = min(req_dec, req_pre) if wl.request_rate_per_s is None else wl.request_rate_per_s
    row["requests_per_s"] = sustained
    row["usd_per_hour"] = nan if price is None else price * row["devices"]
    row["usd_per_mtok_output"] = nan if price is None else \
        row["usd_per_hour"] / SECONDS_PER_HOUR / (sustained * wl.output_len) * TOKENS_PER_MTOK
    if not row["feasible"]:
        for k, v in list(row.items()):
            if k not in ("hardware", "feasible", "reason", "price_usd_per_hour", "assumptions", "mode",
                         "overlap") and not isinstance(v, str):
                row[k] = nan
        row["bottleneck"] = row["prefill_bottleneck"] = None
    return row, front


INT_COLUMNS = ["devices", "decode_devices", "decode_units", "prefill_devices", "prefill_units", "tp", "ep", "dp",
               "pp", "prefill_tp", "prefill_ep", "prefill_dp", "prefill_pp", "concurrency"]


def plan(m: ModelConfig, profiles: Sequence[HardwareProfile], wl: Workload, opt: PlanOptions = PlanOptions(),
         p: Precision | None = None) -> PlanResult:
    """Ranked table across hardware. Raises ConfigError (with every reason) when none is feasible."""
    wl.check()
    opt.check()
    if not profiles:
        raise ConfigError("hardware: expected at least one hardware profile")
    p = p or Precision.of(m.weight_dtype)
    rows, fronts = [], []
    for hw in profiles:
        row, front = plan_hardware(m, p, hw, wl, opt)
        rows.append(row)
        fronts.append(front)
    table = pd.DataFrame(rows)
    if not table["feasible"].any():
        raise ConfigError("no hardware meets the targets: " + " | ".join(f"{r['hardware']}: {r['reason']}"
                                                                          for r in rows))
    table = table.assign(_usd_missing=table["usd_per_mtok_output"].isna()).sort_values(
        ["feasible", "_usd_missing", "usd_per_mtok_output", "decode_tokens_per_s_per_device"],
        ascending=[False, True, True, False]).drop(columns="_usd_missing").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    for c in INT_COLUMNS:
        table[c] = table[c].astype("Int64")
    pareto = pd.concat([f for f in fronts if not f.empty], ignore_index=True) if any(
        not f.empty for f in fronts) else pd.DataFrame()
    return PlanResult(table=table, pareto=pareto)
