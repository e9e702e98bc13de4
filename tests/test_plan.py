"""`daedalus plan` and the parallel / communication model behind it: monotonicity, memory per
device, communication edge cases, overlap, the JSON contract and bad input."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daedalus.cli import main
from simulators.comm import Fabric, all_reduce_time_s, all_to_all_time_s, ep_time_s, step_time_s
from simulators.errors import ConfigError
from simulators.parallel import Layout, kv_bytes_per_token_per_device, weight_bytes_per_device
from simulators.plan import PlanOptions, Workload, candidates, evaluate, evaluate_layout, plan
from simulators.precision import Precision

EXAMPLE = ["plan", "--model", "deepseek-v3", "--hardware", "h100-sxm", "--hardware", "ascend-910c", "--input-len",
           "4096", "--output-len", "1024", "--ttft-ms", "2000", "--tpot-ms", "50", "--format", "json"]
CONTRACT = {"hardware", "devices", "tp", "ep", "dp", "pp", "batch_per_device", "decode_tokens_per_s_per_device",
            "prefill_tokens_per_s_per_device", "ttft_s", "tpot_s", "bottleneck", "usd_per_mtok_output", "feasible",
            "reason", "prefill_devices", "decode_devices"}


def plan_main(argv: list[str]) -> int:
    """`daedalus plan` exactly as the CLI runs it (parser, error mapping of API fields to flags)."""
    return main(argv)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = plan_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def v3(shipped_models):
    return shipped_models["deepseek-v3"]


FP8 = Precision.of("fp8", "bf16", "bf16")
BF16 = Precision.of("bf16", "bf16", "bf16")


# ----------------------------------------------------------------------------- JSON contract


def test_example_json_contract(capsys, tmp_path):
    code, out, err = run_cli(capsys, *EXAMPLE, "--out", str(tmp_path))
    assert code == 0, err
    recs = json.loads(out)
    assert [r["hardware"] for r in recs] == ["h100-sxm", "ascend-910c"]  # ranked: priced first
    for r in recs:
        assert CONTRACT <= set(r), CONTRACT - set(r)
        assert r["feasible"] is True and r["reason"] == ""
        assert r["ttft_s"] <= 2.0 and r["tpot_s"] <= 0.050
        assert r["devices"] == r["prefill_devices"] + r["decode_devices"]
        assert r["decode_devices"] == r["tp"] * r["dp"] * r["pp"]
        assert r["ep"] in (1, r["tp"] * r["dp"])
        assert r["bottleneck"] in ("compute", "memory bandwidth", "capacity", "interconnect")
        assert r["decode_tokens_per_s_per_device"] > 0 and r["prefill_tokens_per_s_per_device"] > 0
        assert r["decode_tokens_per_s_per_device"] == pytest.approx(
            r["batch_per_device"] / r["tpot_s"], rel=1e-9)
    by = {r["hardware"]: r for r in recs}
    assert by["ascend-910c"]["usd_per_mtok_output"] is None  # no price in the profile
    h100 = by["h100-sxm"]
    # the fleet (prefill + decode devices) at $2.42 per device-hour serves the sustained request rate
    assert h100["usd_per_hour"] == pytest.approx(2.42 * h100["devices"])
    sustained = min(h100["decode_tokens_per_s_per_device"] * h100["decode_devices"] / 1024,
                    h100["prefill_tokens_per_s_per_device"] * h100["prefill_devices"] / 4096)
    assert h100["requests_per_s"] == pytest.approx(sustained)
    assert h100["usd_per_mtok_output"] == pytest.approx(h100["usd_per_hour"] / 3600 / (sustained * 1024) * 1e6)
    assert h100["mode"] == "achievable" and h100["overlap"] == "none"
    # 671B FP8 weights need more than one 8 x 80 GB node: at least two
    assert h100["decode_devices"] >= 16
    for name in ("plan.csv", "pareto.csv", "pareto.png", "plan_inputs.json"):
        assert (tmp_path / name).stat().st_size > 0
    table = pd.read_csv(tmp_path / "plan.csv")
    assert list(table["hardware"]) == ["h100-sxm", "ascend-910c"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_table_format_and_default_hardware_is_fast(capsys, tmp_path):
    start = time.perf_counter()
    code, out, err = run_cli(capsys, "plan", "--input-len", "4k", "--output-len", "1k", "--ttft-ms", "2000",
                             "--tpot-ms", "50", "--out", str(tmp_path))
    elapsed = time.perf_counter() - start
    assert code == 0, err
    assert "h800" in out and "host-cpu" in out and "bottleneck" in out
    assert "mode: achievable" in out  # the header names the prediction mode
    assert "step " in out and "straggler excess" in out and "exposed communication" in out  # the breakdown
    assert "decode: fewest devices meeting TPOT 50 ms" in out  # why the layout was chosen
    assert elapsed < 20  # 13 profiles x prefill + decode, vectorised (a few seconds on 2 cores)


# ------------------------------------------------------------------------------ monotonicity


def test_tighter_tpot_never_needs_fewer_devices(v3, shipped_profiles):
    hw = shipped_profiles["h100-sxm"]
    devices = []
    for tpot_ms in (200, 50, 20, 10, 5, 2, 1.5, 1.0, 0.5):
        wl = Workload(4096, 1024, ttft_s=10.0, tpot_s=tpot_ms * 1e-3)
        try:
            row = plan(v3, [hw], wl).table.iloc[0]
            devices.append(int(row["decode_devices"]))
        except ConfigError:  # no layout meets the target
            devices.append(None)
    feasible = [d for d in devices if d is not None]
    assert len(feasible) >= 5
    assert feasible == sorted(feasible), devices
    assert devices[: len(feasible)] == feasible  # once infeasible, every tighter target stays infeasible
    assert feasible[-1] > feasible[0]  # a tight enough target does need more devices


def test_tighter_ttft_never_needs_fewer_devices(shipped_models, shipped_profiles):
    m = shipped_models["llama-3.1-70b"]
    hw = shipped_profiles["h100-sxm"]
    devices = []
    for ttft in (16.0, 4.0, 2.0, 1.0, 0.5):
        row = plan(m, [hw], Workload(8192, 256, ttft_s=ttft, tpot_s=0.2)).table.iloc[0]
        devices.append(int(row["prefill_devices"]))
    assert devices == sorted(devices) and devices[-1] > devices[0]


def test_request_rate_scales_units(v3, shipped_profiles):
    hw = shipped_profiles["h800"]
    rows = [plan(v3, [hw], Workload(2048, 512, 2.0, 0.05, request_rate_per_s=r)).table.iloc[0] for r in (1, 50, 500)]
    total = [int(r["devices"]) for r in rows]
    assert total == sorted(total) and total[-1] > total[0]
    big = rows[-1]
    decode_rate = big["decode_tokens_per_s_per_device"] * big["decode_devices"] * big["decode_units"] / 512
    assert decode_rate >= 500  # the provisioned decode units sustain the request rate


# ------------------------------------------------------------------------------ memory split


def test_weights_per_device_decrease_with_ep_and_tp(v3, shipped_models):
    per_ep = [float(weight_bytes_per_device(v3, FP8, 1, ep, 1, ep)) for ep in (8, 16, 32, 64, 144)]
    assert all(a > b for a, b in zip(per_ep, per_ep[1:]))
    # EP splits only the routed experts: attention, shared expert, embedding stay whole per DP rank
    assert per_ep[-1] > 0.02 * per_ep[0]
    dense = shipped_models["llama-3.1-70b"]
    per_tp = [float(weight_bytes_per_device(dense, BF16, tp, 1, 1, 1)) for tp in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(per_tp, per_tp[1:]))
    assert per_tp[0] / per_tp[-1] == pytest.approx(8, rel=0.01)
    per_pp = [float(weight_bytes_per_device(dense, BF16, 8, 1, pp, 1)) for pp in (1, 2, 4)]
    assert all(a > b for a, b in zip(per_pp, per_pp[1:]))


def test_kv_split_gqa_by_tp_but_not_mla_latent(v3, shipped_models):
    """GQA KV heads split across TP up to the number of KV heads; MLA's latent is whole on every rank."""
    mla = [float(kv_bytes_per_token_per_device(v3, BF16, tp, 1)) for tp in (1, 2, 4, 8)]
    assert mla == [mla[0]] * 4 and mla[0] == pytest.approx(70272)
    gqa = shipped_models["llama-3.1-70b"]  # 8 KV heads
    kv = [float(kv_bytes_per_token_per_device(gqa, BF16, tp, 1)) for tp in (1, 2, 4, 8)]
    assert kv == pytest.approx([kv[0] / tp for tp in (1, 2, 4, 8)])
    from dataclasses import replace

    two_kv = replace(gqa, num_key_value_heads=2)
    kv2 = [float(kv_bytes_per_token_per_device(two_kv, BF16, tp, 1)) for tp in (1, 2, 4, 8)]
    assert kv2[1] == kv2[2] == kv2[3] == pytest.approx(kv2[0] / 2)  # replicated beyond 2 ways


# ---------------------------------------------------------------------------- communication


FABRIC = Fabric("test", scaleup_bytes_per_s=200e9, scaleup_latency_s=1e-6, domain_devices=8,
                scaleout_bytes_per_s=50e9, scaleout_latency_s=3e-6)


def test_communication_is_zero_on_one_device(v3, shipped_profiles):
    assert all_reduce_time_s(1e9, 1, FABRIC) == 0
    assert all_to_all_time_s(1e9, 1, FABRIC) == 0
    assert ep_time_s(128, 7168, 8, 1, FABRIC, 1.0, 2.0) == (0, 0)
    r = evaluate_layout(v3, FP8, shipped_profiles["b200"], Layout(), 4, "decode", Workload(1024, 128))
    assert r["comm_s"] == 0 and r["step_s"] == r["roofline_s"]


def test_ring_all_reduce_and_off_domain_all_to_all():
    S = 64e6
    for t in (2, 4, 8):
        expect = 2 * (t - 1) / t * S / 200e9 + 2 * (t - 1) * 1e-6
        assert all_reduce_time_s(S, t, FABRIC) == pytest.approx(expect)
    # 32 ranks over 4 domains of 8: 7/32 of the payload on scale-up, 24/32 over the NICs (slower)
    assert all_to_all_time_s(S, 32, FABRIC) == pytest.approx(S * 24 / 32 / 50e9 + 3e-6)
    # inside one domain only scale-up is used
    assert all_to_all_time_s(S, 8, FABRIC) == pytest.approx(S * 7 / 8 / 200e9 + 1e-6)
    no_nic = Fabric("x", 200e9, 1e-6, 8, 0.0, 0.0)
    assert np.isinf(all_to_all_time_s(S, 16, no_nic)) and np.isfinite(all_to_all_time_s(S, 8, no_nic))


def test_fabric_uses_per_direction_bandwidth_and_labels_assumed_latency(shipped_profiles):
    h800 = Fabric.from_profile(shipped_profiles["h800"])
    assert h800.scaleup_bytes_per_s == 200e9 and h800.scaleout_bytes_per_s == 50e9 and h800.domain_devices == 8
    assert "scaleout_latency_s" in h800.assumed
    c = Fabric.from_profile(shipped_profiles["ascend-910c"])
    assert c.scaleup_latency_s == pytest.approx(1.9e-6) and "scaleup_latency_s" not in c.assumed


def test_ep_dispatch_fp8_is_cheaper_than_bf16():
    d8, c8 = ep_time_s(256, 7168, 8, 64, FABRIC, 1.0 + 4 / 128, 2.0)
    d16, c16 = ep_time_s(256, 7168, 8, 64, FABRIC, 2.0, 2.0)
    assert d8 < d16 and c8 == c16


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 1.0), st.floats(0, 1.0))
def test_ideal_overlap_step_is_never_slower(compute, comm):
    assert step_time_s(compute, comm, "ideal") <= step_time_s(compute, comm, "none")


def test_overlap_options_on_candidates(v3, shipped_profiles):
    """ideal <= none everywhere; two-micro-batch >= ideal (it can only hide what the schedule allows)
    and keeps the TP all-reduce on the critical path: step >= compute stream + TP all-reduce."""
    wl = Workload(4096, 1024)
    for name in ("h100-sxm", "ascend-910b"):
        hw = shipped_profiles[name]
        fabric = Fabric.from_profile(hw)
        cand = candidates(v3, fabric, "decode", 256)
        run = {ov: evaluate(v3, FP8, hw, None, cand, "decode", wl, PlanOptions(overlap=ov))
               for ov in ("none", "two-micro-batch", "ideal")}
        none, tbo, ideal = (run[k]["step_s"].to_numpy() for k in ("none", "two-micro-batch", "ideal"))
        assert (ideal <= none + 1e-15).all() and (run["none"]["comm_s"] > 0).any()
        t = run["two-micro-batch"]
        assert (t["step_s"] >= t["roofline_s"] + t["tp_comm_s"] - 1e-12).all()
        assert (tbo + 1e-12 >= evaluate(v3, FP8, hw, None, cand, "decode", wl,
                                        PlanOptions(overlap="ideal"))["roofline_s"].to_numpy()).all()


@pytest.mark.parametrize("overlap", ["none", "two-micro-batch", "ideal"])
def test_step_breakdown_parts_add_up_to_the_step(shipped_models, shipped_profiles, overlap):
    """compute-bound + memory-bound ops (mean EP rank) + straggler excess + exposed communication =
    the step, for MoE under skewed routing (straggler > 0) and a pipelined dense model, both phases."""
    h100 = shipped_profiles["h100-sxm"]
    cases = [(shipped_models["deepseek-v3"], FP8, Layout(tp=1, dp=16, ep=16), PlanOptions(overlap=overlap,
                                                                                        routing_skew=1.0)),
             (shipped_models["llama-3.1-70b"], BF16, Layout(tp=8, pp=2), PlanOptions(overlap=overlap))]
    for m, prec, lay, opt in cases:
        for phase, batch in (("decode", 32), ("prefill", 2)):
            r = evaluate_layout(m, prec, h100, lay, batch, phase, Workload(4096, 1024), opt)
            parts = r["compute_bound_s"] + r["memory_bound_s"] + r["straggler_s"] + r["exposed_comm_s"]
            assert parts == pytest.approx(r["step_s"], rel=1e-9), (m.name, phase)
            assert min(r["compute_bound_s"], r["memory_bound_s"], r["straggler_s"], r["exposed_comm_s"]) >= 0
            if m.is_moe:
                assert r["straggler_s"] > 0


def test_two_micro_batch_costs_weights_twice_without_communication(shipped_models, shipped_profiles):
    """On one device there is nothing to hide: splitting a weight-bound dense decode batch in two only
    reads the weights twice (about 2x the step)."""
    m, hw = shipped_models["llama-3.1-70b"], shipped_profiles["b200"]
    wl = Workload(1024, 128)
    none = evaluate_layout(m, BF16, hw, Layout(), 8, "decode", wl, PlanOptions(overlap="none"))
    tbo = evaluate_layout(m, BF16, hw, Layout(), 8, "decode", wl, PlanOptions(overlap="two-micro-batch"))
    assert none["comm_s"] == 0 and tbo["step_s"] > 1.5 * none["step_s"]


def test_achievable_mode_is_slower_than_speed_of_light(v3, shipped_profiles):
    for name in ("h800", "ascend-910c", "mi300x"):
        hw = shipped_profiles[name]
        lay = Layout(tp=1, dp=16, ep=16)
        for phase, batch in (("decode", 64), ("prefill", 2)):
            sol = evaluate_layout(v3, FP8, hw, lay, batch, phase, Workload(4096, 1024),
                                  PlanOptions(mode="speed_of_light", routing="balanced"))
            ach = evaluate_layout(v3, FP8, hw, lay, batch, phase, Workload(4096, 1024), PlanOptions())
            assert ach["step_s"] > sol["step_s"]


@pytest.mark.parametrize("skew", [0.5, 1.0, 1.5])
def test_zipf_skew_never_makes_a_step_faster(v3, shipped_profiles, skew):
    hw = shipped_profiles["h100-sxm"]
    fabric = Fabric.from_profile(hw)
    cand = candidates(v3, fabric, "decode", 128)
    base = evaluate(v3, FP8, hw, None, cand, "decode", Workload(4096, 1024), PlanOptions())
    skewed = evaluate(v3, FP8, hw, None, cand, "decode", Workload(4096, 1024), PlanOptions(routing_skew=skew))
    assert (skewed["step_s"].to_numpy() >= base["step_s"].to_numpy() - 1e-12).all()
    assert (skewed["step_s"] > base["step_s"] * 1.01).any()  # and skew does cost something at EP > 1


def test_ascend_runs_fp8_checkpoints_as_int8(v3, shipped_profiles):
    """W8A8: an FP8 checkpoint on the 910C computes at the INT8 peak, not the BF16 fallback."""
    from simulators.parallel import device_precision
    from simulators.roofline import resolve_peak

    c = shipped_profiles["ascend-910c"]
    p = device_precision(FP8, c)
    assert p.gemm_dtype == "int8" and p.w_bytes == FP8.w_bytes
    assert resolve_peak(c, p.gemm_dtype)[1] == pytest.approx(2 * resolve_peak(c, "bf16")[1], rel=0.05)
    assert device_precision(FP8, shipped_profiles["h800"]) == FP8  # native FP8 stays
    lay = Layout(tp=1, dp=16, ep=16)
    fp8 = evaluate_layout(v3, FP8, c, lay, 4, "prefill", Workload(4096, 1))
    bf16 = evaluate_layout(v3, BF16, c, lay, 4, "prefill", Workload(4096, 1))
    assert fp8["compute_s"] < 0.75 * bf16["compute_s"]


def test_capacity_is_what_the_device_exposes_less_reserved(v3, shipped_profiles):
    from simulators.sizing import capacity_bytes

    h100 = shipped_profiles["h100-sxm"]
    assert capacity_bytes(h100, 1.0) == pytest.approx(81559 * 2**20 - 4 * 2**30)  # nvidia-smi MiB, 4 GiB reserved
    r = evaluate_layout(v3, FP8, h100, Layout(tp=1, dp=16, ep=16), 1, "decode", Workload(4096, 1024))
    assert r["usable_bytes_per_device"] == pytest.approx(capacity_bytes(h100, 0.9))


def test_mtp_adds_its_module_weights_and_kv(v3, shipped_profiles):
    hw = shipped_profiles["h800"]
    lay = Layout(tp=1, dp=16, ep=16)
    plain = evaluate_layout(v3, FP8, hw, lay, 8, "decode", Workload(4096, 1024))
    mtp = evaluate_layout(v3, FP8, hw, lay, 8, "decode", Workload(4096, 1024, mtp_acceptance=0.85))
    per_layer = (plain["weight_bytes_per_device"] - 0) / v3.num_hidden_layers
    extra = mtp["weight_bytes_per_device"] - plain["weight_bytes_per_device"]
    assert 0.3 * per_layer < extra < 3 * per_layer  # about one more MoE layer's share (+ the projection)
    assert mtp["kv_bytes_per_device"] == pytest.approx(plain["kv_bytes_per_device"] * 62 / 61)
    assert mtp["batch_cap"] < plain["batch_cap"]


def test_pinned_layout_and_price_override(capsys, tmp_path):
    code, out, err = run_cli(capsys, "plan", "--hardware", "h800", "--hardware", "ascend-910c", "--input-len",
                             "4096", "--output-len", "1024", "--decode-layout", "tp=1,dp=16,ep=16,batch=32",
                             "--price-per-hour", "ascend-910c=1.5", "--format", "json", "--out", str(tmp_path))
    assert code == 0, err
    by = {r["hardware"]: r for r in json.loads(out)}
    for r in by.values():
        assert (r["decode_devices"], r["tp"], r["dp"], r["ep"]) == (16, 1, 16, 16)
        assert r["batch_per_device"] == 32
    assert by["ascend-910c"]["usd_per_hour"] == pytest.approx(1.5 * by["ascend-910c"]["devices"])
    assert by["h800"]["price_usd_per_hour"] == 2.0  # the profile's price where no override


def test_mtp_emits_1_plus_p_tokens_per_step(v3, shipped_profiles):
    hw = shipped_profiles["h800"]
    lay = Layout(tp=1, dp=16, ep=16)
    plain = evaluate_layout(v3, FP8, hw, lay, 32, "decode", Workload(4096, 1024))
    mtp = evaluate_layout(v3, FP8, hw, lay, 32, "decode", Workload(4096, 1024, mtp_acceptance=0.85))
    assert Workload(1, 1, mtp_acceptance=0.85).tokens_per_decode_step == pytest.approx(1.85)
    assert mtp["tpot_s"] == pytest.approx(mtp["step_s"] / 1.85)
    assert mtp["tpot_s"] < plain["tpot_s"] < mtp["step_s"]


# ------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--input-len", "-5"], "--input-len"),
        (["--output-len", "0"], "--output-len"),
        (["--tpot-ms", "-1"], "--tpot-ms"),
        (["--ttft-ms", "soon"], "--ttft-ms"),
        (["--hardware", "h300"], "valid names"),
        (["--mtp-acceptance", "1.5"], "--mtp-acceptance"),
        (["--tpot-ms", "0.001"], "TPOT 0.001 ms not met"),
        (["--max-devices", "4"], "do not fit"),
        (["--model", "deepseek-v3", "--model", "llama-3.1-8b"], "one model"),
        (["--decode-layout", "tp=1,dq=4"], "--decode-layout"),
        (["--decode-layout", "tp=3"], "tp=3"),
        (["--price-per-hour", "h800=2"], "--price-per-hour"),
        (["--price-per-hour", "free"], "--price-per-hour"),
        (["--mode", "guess"], "--mode"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, extra, needle):
    argv = ["plan", "--hardware", "h100-sxm", "--input-len", "4096", "--output-len", "1024", "--out", str(tmp_path)]
    code, out, err = run_cli(capsys, *argv, *extra)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert out == ""


def test_infeasible_hardware_keeps_its_row_with_a_reason(capsys, tmp_path):
    code, out, err = run_cli(capsys, "plan", "--hardware", "h100-sxm", "--hardware", "host-cpu", "--input-len", "4096",
                             "--output-len", "1024", "--tpot-ms", "50", "--format", "json", "--out", str(tmp_path))
    assert code == 0, err
    by = {r["hardware"]: r for r in json.loads(out)}
    assert by["h100-sxm"]["feasible"] and by["h100-sxm"]["rank"] == 1
    cpu = by["host-cpu"]
    assert cpu["feasible"] is False and "do not fit" in cpu["reason"] and cpu["devices"] is None


def test_throughput_objective_trades_devices_for_tokens_per_device(v3, shipped_profiles):
    hw = shipped_profiles["h800"]
    wl = Workload(4096, 1024, ttft_s=2.0, tpot_s=0.05)
    small = plan(v3, [hw], wl, PlanOptions(objective="devices")).table.iloc[0]
    fast = plan(v3, [hw], wl, PlanOptions(objective="throughput")).table.iloc[0]
    assert fast["decode_tokens_per_s_per_device"] >= small["decode_tokens_per_s_per_device"]
    assert fast["decode_devices"] >= small["decode_devices"]
    assert fast["tpot_s"] <= 0.05
