"""Published DeepSeek-V3/R1 deployments and speed limits against the planner, side by side.

Sources
- DeepSeek, "Day 6: One More Thing, DeepSeek-V3/R1 Inference System Overview", open-infra-index,
  202502OpenSourceWeek/day_6_one_more_thing_deepseekV3R1_inference_system_overview.md (1 Mar 2025;
  read via a verbatim copy of the file). Prefill unit: 4 nodes, routed experts EP32, MLA / shared
  expert DP32, 32 redundant experts, "each GPU handles 9 routed experts and 1 shared expert". Decode
  unit: 18 nodes, EP144 / DP144, 32 redundant, "each GPU manages 2 routed experts and 1 shared
  expert". FP8 matmuls and dispatch, BF16 MLA and combine. 24 h averages: 608B input tokens of which
  56.3% hit the on-disk KV cache; "average output speed was 20-22 tokens per second"; "average
  kvcache length per output token was 4,989 tokens"; "Each H800 node delivers an average throughput
  of ~73.7k tokens/s input (including cache hits) during prefilling or ~14.8k tokens/s output during
  decoding." MTP is used (ISCA'25 §2.3.3: acceptance 80-90% for the second token).
- Zhao et al., "Insights into DeepSeek-V3: Scaling Challenges and Reflections on Hardware for AI
  Architectures", ISCA'25, arXiv 2505.09343, §2.3.2 (read via a verbatim copy of the paper text):
  "Comm. Time = (1Byte + 2Bytes) x 32 x 9 x 7K / 50GB/s = 120.96 us" (FP8 dispatch, BF16 combine,
  32 tokens per device, 8 routed + 1 shared expert, hidden ~7K, CX7 400 Gbps, no network latency);
  "Total Time Per Layer = 2 x 120.96 us = 241.92 us" (dual micro-batch overlap, compute hidden);
  61 layers -> "14.76 ms TPOT, equivalent to 67 tokens per second"; GB200 NVL72 (900 GB/s
  unidirectional across 72 GPUs): 6.72 us -> "0.82 ms TPOT, or approximately 1200 tokens per second".

- DeepSeek profile-data (github.com/deepseek-ai/profile-data README): prefill EP32 / TP1, 4K prompts,
  16K tokens per GPU; decode EP128 / TP1, 4K prompts, 128 requests per GPU; two micro-batches;
  "we simulate an absolutely balanced MoE routing strategy". Throughput per node from those traces as
  tabulated by the SGLang team (below): prefill 62,713, decode 18,598 tokens/s per node.
- The SGLang Team, "Deploying DeepSeek with PD Disaggregation and Large-scale Expert Parallelism on 96
  H100 GPUs" (LMSYS blog, 2025-05-05; lm-sys/lm-sys.github.io blog/2025-05-05-large-scale-ep.md):
  prefill on 4 nodes (EP32) 50,302 tokens/s per node for 4K prompts at 16,384 tokens per device
  ("SGLang (Default)" expert distribution, EPLB with 32 redundant experts, 288 in all); decode on 9
  nodes (EP72) 22,282 tokens/s per node, 256 sequences per GPU, 2,000-token KV, no MTP. That run used
  two-batch overlap (TBO): the blog's TBO ablation says "The speedup reaches 25.5% at 256 tokens with a
  performance of 22,310 tokens per second", so the same decode without TBO ran 22,310 / 1.255 = 17,777
  tokens/s per node (the blog's "no-TBO with 256" configuration of its decode breakdown).

Which figures derive, which check (a figure never does both):
- DERIVE the achievable rates (hardware_profiles/h800.yaml, h100-sxm.yaml `achievable:`): DeepGEMM
  README GEMM tables, FlashMLA README (660 TFLOPS / 3000 GB/s), DeepEP legacy README bandwidths
  (39 GB/s low-latency RDMA, 50.5 GB/s normal RDMA, 155.5 GB/s NVLink), nvidia-smi's 81,559 MiB.
- CHECK only: every throughput in this file (day-6, profile-data, SGLang, SGLang's TBO ablation) and the
  ISCA'25 formulas. Day-6's 24-h token totals and node occupancy only show what its per-node figures are.
The checks run the planner's own composition: achievable mode, no overlap (the planner default), the
publication's layout / batch / context / precision / MTP / cache hits pinned, uniform routing with
EPLB's 32 redundant experts (balanced routing where the publication simulated it). Speed of light
(datasheet peaks, ideal overlap, balanced routing) is printed beside each and must stay above.
Two-micro-batch overlap is not used in the checks: its schedule bound hides more than the published
systems manage (SGLang: communication under TBO is slower than in unit tests; measured TBO gains
27-35% at prefill), so it is an optimistic option, printed beside for information.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulators.comm import Fabric, element_bytes, ep_time_s
from simulators.parallel import Layout, experts_per_device
from simulators.plan import PlanOptions, Workload, evaluate_layout
from simulators.precision import Precision

GPUS_PER_NODE = 8
FP8_MATMUL = Precision.of("fp8", "bf16", "bf16")  # FP8 matmuls and dispatch, BF16 MLA cache and combine
MTP_ACCEPTANCE = 0.85  # ISCA'25 §2.3.3: 80-90%
PUBLISHED = {
    "prefill_input_tokens_per_s_per_node": 73.7e3,  # including cache hits
    "cache_hit_rate": 0.563,
    "decode_output_tokens_per_s_per_node": 14.8e3,
    "output_tokens_per_s_per_user": (20.0, 22.0),
    "kv_length_per_output_token": 4989,
}
PREFILL = Layout(tp=1, dp=32, ep=32, redundant_experts=32)  # 4 nodes
DECODE = Layout(tp=1, dp=144, ep=144, redundant_experts=32)  # 18 nodes
PREFILL_INPUT_LEN = 4096  # not published for day 6; profile-data's prompt length
PREFILL_PROMPTS_PER_GPU = 4  # 16K tokens per GPU per step (profile-data)
TOLERANCE = 0.15  # achievable mode: within +-15% of the published throughput

ACHIEVABLE = PlanOptions(mode="achievable", overlap="none", routing="uniform")
SPEED_OF_LIGHT = PlanOptions(mode="speed_of_light", overlap="ideal", routing="balanced")
TWO_MICRO_BATCH = PlanOptions(mode="achievable", overlap="two-micro-batch", routing="uniform")


def side_by_side(rows: list[tuple[str, float, float]]) -> str:
    lines = [f"{'quantity':<48}{'published':>14}{'predicted':>14}{'ratio':>8}"]

    def num(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"

    lines += [f"{q:<48}{num(pub):>14}{num(pred):>14}{pred / pub:>8.2f}" for q, pub, pred in rows]
    return "\n".join(lines)


def show(request, capsys, *lines: str) -> None:
    """Print the side-by-side tables with `pytest -v` (they stay out of quiet runs)."""
    if request.config.getoption("verbose") > 0:
        with capsys.disabled():
            print("\n" + "\n".join(lines))


@pytest.fixture(scope="module")
def v3(shipped_models):
    return shipped_models["deepseek-v3"]


@pytest.fixture(scope="module")
def h800(shipped_profiles):
    return shipped_profiles["h800"]


@pytest.fixture(scope="module")
def h100(shipped_profiles):
    return shipped_profiles["h100-sxm"]


def per_node(v3, hw, layout, batch, phase, wl, opt, routing=None) -> tuple[float, dict]:
    if routing is not None:
        opt = replace(opt, routing=routing)
    r = evaluate_layout(v3, FP8_MATMUL, hw, layout, batch, phase, wl, opt)
    assert r["fits"], f"the published {phase} batch must fit"
    return r["tokens_per_s_per_device"] * GPUS_PER_NODE, r


def check(request, capsys, title, published, v3, hw, layout, batch, phase, wl, routing="uniform"):
    """Achievable within TOLERANCE; speed of light above it; both printed with the breakdown."""
    ach, r = per_node(v3, hw, layout, batch, phase, wl, ACHIEVABLE, routing)
    sol, _ = per_node(v3, hw, layout, batch, phase, wl, SPEED_OF_LIGHT)
    tbo, _ = per_node(v3, hw, layout, batch, phase, wl, TWO_MICRO_BATCH, routing)
    show(request, capsys, title,
         side_by_side([("tokens/s per node, achievable (no overlap)", published, ach),
                       ("tokens/s per node, speed of light", published, sol),
                       ("tokens/s per node, achievable + two-micro-batch", published, tbo)]),
         f"  step {r['step_s'] * 1e3:.1f} ms = compute-bound {r['compute_bound_s'] * 1e3:.1f} + memory-bound "
         f"{r['memory_bound_s'] * 1e3:.1f} + straggler {r['straggler_s'] * 1e3:.1f} + exposed comm "
         f"{r['exposed_comm_s'] * 1e3:.1f} ms")
    assert sol > published  # the bound stays a bound
    return ach / published


def test_unit_composition_matches_published(v3):
    """(256 routed + 32 redundant) / EP: 9 experts per GPU at EP32, 2 at EP144; 4 and 18 nodes."""
    assert experts_per_device(v3, PREFILL.ep, PREFILL.redundant_experts) == 9
    assert experts_per_device(v3, DECODE.ep, DECODE.redundant_experts) == 2
    assert PREFILL.devices == 4 * GPUS_PER_NODE and DECODE.devices == 18 * GPUS_PER_NODE


def test_day6_decode_h800(v3, h800, request, capsys):
    """Decode at the published operating point: EP144 / DP144, MTP, 4,989-token KV, and as many
    sequences per GPU as the published figures imply (14.8k / 8 / 21 tok/s per user ~ 88)."""
    pub = PUBLISHED["decode_output_tokens_per_s_per_node"]
    batch = round(pub / GPUS_PER_NODE / (sum(PUBLISHED["output_tokens_per_s_per_user"]) / 2))
    wl = Workload(input_len=PUBLISHED["kv_length_per_output_token"], output_len=1, mtp_acceptance=MTP_ACCEPTANCE)
    ratio = check(request, capsys, f"day-6 decode, H800 EP144, batch {batch}, MTP p={MTP_ACCEPTANCE}", pub,
                  v3, h800, DECODE, batch, "decode", wl)
    assert abs(ratio - 1) <= TOLERANCE


def _day6_prefill_ratio(v3, h800, request, capsys) -> float:
    wl = Workload(input_len=PREFILL_INPUT_LEN, output_len=1, cache_hit_rate=PUBLISHED["cache_hit_rate"])
    return check(request, capsys, "day-6 prefill, H800 EP32, 4 x 4K prompts per GPU, 56.3% cache hits",
                 PUBLISHED["prefill_input_tokens_per_s_per_node"], v3, h800, PREFILL, PREFILL_PROMPTS_PER_GPU,
                 "prefill", wl)


def test_day6_prefill_h800_is_bounded(v3, h800, request, capsys):
    """The production prefill average sits well below what the kernels allow: DeepSeek's own profile
    of the same unit runs ~1.95x the production figure (62,713 vs 32,206 computed tokens/s per node,
    SGLang's table). The achievable mode lands between the published figure and that profile."""
    ratio = _day6_prefill_ratio(v3, h800, request, capsys)
    assert 1.0 < ratio < 62_713 / 32_206


SECONDS_PER_DAY = 86_400
DAY6_TOTALS = {"input_tokens": 608e9, "output_tokens": 168e9, "average_nodes": 226.75}  # the same 24 h


def test_day6_per_node_figures_are_24h_occupancy_averages():
    """Why the day-6 prefill figure is not a like-for-like check: its per-node throughputs are the day's
    token totals over the nodes the service held on average (608B input / 86,400 s / 73.7k = 95.5
    prefill nodes, 168B output / 86,400 s / 14.8k = 131.4 decode nodes; together the published 226.75
    average occupancy). They average every hour on every held node, off-peak and partly filled steps
    included, while the planner costs a step with full 16K-token batches. Decode escapes this because its
    check derives the batch (88 per GPU) from the same averages; prefill publishes no batch or TTFT."""
    prefill_nodes = DAY6_TOTALS["input_tokens"] / SECONDS_PER_DAY / PUBLISHED["prefill_input_tokens_per_s_per_node"]
    decode_nodes = DAY6_TOTALS["output_tokens"] / SECONDS_PER_DAY / PUBLISHED["decode_output_tokens_per_s_per_node"]
    assert prefill_nodes + decode_nodes == pytest.approx(DAY6_TOTALS["average_nodes"], rel=0.01)
    assert prefill_nodes == pytest.approx(95.5, abs=0.5) and decode_nodes == pytest.approx(131.4, abs=0.5)


@pytest.mark.xfail(strict=True, reason="not like-for-like: day-6 prefill's 73.7k is 24-h input tokens over the "
                   "prefill nodes held on average (see test_day6_per_node_figures_are_24h_occupancy_averages), "
                   "off-peak and partly filled steps included; the check pins full 16K-token batches. Achievable "
                   "mode is ~1.56x it, and sits between it and DeepSeek's own profile of the unit (1.95x it)")
def test_day6_prefill_h800_within_tolerance(v3, h800, request, capsys):
    assert abs(_day6_prefill_ratio(v3, h800, request, capsys) - 1) <= TOLERANCE


def test_profile_data_prefill_h800(v3, h800, request, capsys):
    ratio = check(request, capsys, "DeepSeek profile-data prefill, H800 EP32, 16K tokens per GPU, balanced routing",
                  62_713, v3, h800, Layout(tp=1, dp=32, ep=32), 4, "prefill", Workload(4096, 1), routing="balanced")
    assert abs(ratio - 1) <= TOLERANCE


def test_profile_data_decode_h800(v3, h800, request, capsys):
    wl = Workload(4096, 1, mtp_acceptance=MTP_ACCEPTANCE)
    ratio = check(request, capsys, "DeepSeek profile-data decode, H800 EP128, 128 per GPU, 4K KV, balanced routing",
                  18_598, v3, h800, Layout(tp=1, dp=128, ep=128), 128, "decode", wl, routing="balanced")
    assert abs(ratio - 1) <= TOLERANCE


SGLANG_PREFILL = Layout(tp=1, dp=32, ep=32, redundant_experts=32)  # 4 nodes, EPLB 288 experts
SGLANG_DECODE = Layout(tp=1, dp=72, ep=72, redundant_experts=32)  # 9 nodes


def test_sglang_prefill_h100(v3, h100, request, capsys):
    ratio = check(request, capsys, "SGLang prefill, 4 x 8 H100 EP32, 16,384 tokens per GPU of 4K prompts", 50_302,
                  v3, h100, SGLANG_PREFILL, 4, "prefill", Workload(4096, 1))
    assert abs(ratio - 1) <= TOLERANCE


SGLANG_DECODE_TBO_SPEEDUP = 0.255  # blog, TBO ablation: "The speedup reaches 25.5% at 256 tokens ..."
SGLANG_DECODE_TBO_TOKENS_PER_S = 22_310  # "... with a performance of 22,310 tokens per second"


def test_sglang_decode_h100_without_overlap(v3, h100, request, capsys):
    """Like for like: the planner's default composition (no overlap: dispatch / combine on the critical
    path) against SGLang's same decode run without two-batch overlap, 22,310 / 1.255 per node.
    No EP-dependent link rate is added for EP72: DeepEP's low-latency table rises from 39 GB/s (EP128)
    to 43-46 GB/s (EP64) because more copies stay on the node (its bandwidth is all copies' bytes over
    the time); the off-node share alone runs 36-40 GB/s from EP32 to EP256 (e.g. 43 x 56/64 = 37.6),
    and the comm model already sends the node-local copies over NVLink."""
    no_tbo = SGLANG_DECODE_TBO_TOKENS_PER_S / (1 + SGLANG_DECODE_TBO_SPEEDUP)
    ratio = check(request, capsys, "SGLang decode without TBO, 9 x 8 H100 EP72, 256 per GPU, 2K KV, no MTP",
                  no_tbo, v3, h100, SGLANG_DECODE, 256, "decode", Workload(2000, 1))
    assert abs(ratio - 1) <= TOLERANCE


@pytest.mark.xfail(strict=True, reason="not like-for-like: SGLang's 22,282 ran two-batch overlap (25.5% over the "
                   "same run without it); the no-overlap default is ~0.85x it (and 1.06x the no-TBO run, "
                   "test_sglang_decode_h100_without_overlap), the two-micro-batch option ~1.32x it (its schedule "
                   "bound hides all of dispatch / combine; the SM and kernel cost of overlap is not modelled)")
def test_sglang_decode_h100(v3, h100, request, capsys):
    ratio = check(request, capsys, "SGLang decode (with TBO), 9 x 8 H100 EP72, 256 per GPU, 2K KV, no MTP", 22_282,
                  v3, h100, SGLANG_DECODE, 256, "decode", Workload(2000, 1))
    assert abs(ratio - 1) <= TOLERANCE


def test_zipf_skew_never_speeds_up_the_published_decode(v3, h800):
    base = evaluate_layout(v3, FP8_MATMUL, h800, DECODE, 88, "decode", Workload(4989, 1), ACHIEVABLE)
    for skew in (0.5, 1.0, 1.5):
        r = evaluate_layout(v3, FP8_MATMUL, h800, DECODE, 88, "decode", Workload(4989, 1),
                            replace(ACHIEVABLE, routing_skew=skew))
        assert r["step_s"] >= base["step_s"] and r["straggler_s"] >= base["straggler_s"]


# ------------------------------------------------------------------ ISCA'25 §2.3.2 speed limits

PAPER_HIDDEN = 7000  # the paper's "7K" (120.96 us is exact with 7000; DeepSeek-V3's hidden is 7168)
PAPER_COPIES = 9  # 8 routed + 1 shared expert per token, all remote in the paper's setup
PAPER_TOKENS_PER_DEVICE = 32
PAPER_LAYERS = 61
PAPER_EP = 256  # one expert per device: 1/256 of the copies stays local in our model (the paper: none)


def _paper_tpot(fabric: Fabric, ep: int) -> tuple[float, float]:
    dispatch, combine = ep_time_s(PAPER_TOKENS_PER_DEVICE, PAPER_HIDDEN, PAPER_COPIES, ep, fabric, 1.0, 2.0)
    ep_step = float(dispatch + combine)
    per_layer = 2 * ep_step  # two micro-batches, each one dispatch + combine, compute hidden
    return ep_step, PAPER_LAYERS * per_layer


def test_isca25_ib_speed_limit(request, capsys):
    """CX7 400 Gbps IB = 50 GB/s per GPU per direction, every copy over the NIC, latency excluded."""
    ib = Fabric("cx7-ib", scaleup_bytes_per_s=0.0, scaleup_latency_s=0.0, domain_devices=1,
                scaleout_bytes_per_s=400e9 / 8, scaleout_latency_s=0.0)
    ep_step, tpot = _paper_tpot(ib, PAPER_EP)
    show(request, capsys, "ISCA'25 §2.3.2, IB CX7 400 Gbps",
         side_by_side([("EP step (dispatch + combine), us", 120.96, ep_step * 1e6),
                       ("TPOT, ms", 14.76, tpot * 1e3), ("tokens/s", 67, 1 / tpot)]))
    assert ep_step == pytest.approx(120.96e-6, rel=0.005)  # only the 1/256 local share differs
    assert tpot == pytest.approx(14.76e-3, rel=0.005)
    assert 1 / tpot == pytest.approx(67, rel=0.02)


def test_isca25_nvl72_speed_limit(request, capsys):
    """GB200 NVL72: 900 GB/s unidirectional, 72 GPUs in one scale-up domain."""
    nvl72 = Fabric("gb200-nvl72", scaleup_bytes_per_s=900e9, scaleup_latency_s=0.0, domain_devices=72,
                   scaleout_bytes_per_s=0.0, scaleout_latency_s=0.0)
    ep_step, tpot = _paper_tpot(nvl72, 72)
    show(request, capsys, "ISCA'25 §2.3.2, GB200 NVL72",
         side_by_side([("EP step, us", 6.72, ep_step * 1e6), ("TPOT, ms", 0.82, tpot * 1e3),
                       ("tokens/s", 1200, 1 / tpot)]))
    assert ep_step == pytest.approx(6.72e-6, rel=0.02)  # 71 of 72 shares cross the fabric
    assert tpot == pytest.approx(0.82e-3, rel=0.02)
    assert 1 / tpot == pytest.approx(1200, rel=0.05)  # the paper rounds 1220 to "approximately 1200"


def test_isca25_operating_point_through_the_planner(v3, h800, request, capsys):
    """The same operating point (32 tokens per GPU per micro-batch, two micro-batches, short context
    so compute hides) through the full planner on the H800 profile, EP144 on 8-GPU nodes. The
    planner's TPOT is the paper's 14.76 ms times named corrections, plus link latency:
      hidden 7168 / 7000; 8 remote copies (the shared expert is local under DP attention) / 9;
      58 MoE layers / 61; FP8 scales (1 + 4/128 + 2) / 3; 136 of 144 ranks off-node (the other 7
      over NVLink, concurrently); plus 2 x 58 x the assumed scale-out latency."""
    r = evaluate_layout(v3, FP8_MATMUL, h800, DECODE, 2 * PAPER_TOKENS_PER_DEVICE, "decode", Workload(1, 1),
                        SPEED_OF_LIGHT)
    fabric = Fabric.from_profile(h800)
    corrections = (v3.hidden_size / PAPER_HIDDEN) * (v3.num_experts_per_tok / PAPER_COPIES) \
        * (v3.n_moe_layers / PAPER_LAYERS) * ((element_bytes(1.0) + 2.0) / 3.0) * ((144 - 8) / 144)
    latency = 2 * v3.n_moe_layers * fabric.scaleout_latency_s
    expected = 14.76e-3 * corrections + latency
    show(request, capsys, "ISCA'25 operating point through the planner (H800, EP144, 64 tokens per GPU per step)",
         side_by_side([("TPOT, ms (paper's formula)", 14.76, r["tpot_s"] * 1e3),
                       ("TPOT, ms (paper x corrections + latency)", expected * 1e3, r["tpot_s"] * 1e3)]))
    assert r["bound"] == "interconnect"
    assert r["tpot_s"] == pytest.approx(expected, rel=0.01)
    assert r["tpot_s"] == pytest.approx(14.76e-3, rel=0.25)
