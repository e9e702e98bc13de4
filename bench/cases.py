"""Benchmark cases keyed like the simulator's, their FLOPs and bytes (from the simulator only),
and the sweeps (quick for a small CPU, full for accelerators, calibration).

Every attention / MoE case names a shipped model whose dimensions it uses. Variants with a
different number of KV heads (MQA, MHA) are written `model:kv_heads=N` and costed by the simulator
with that ModelConfig field replaced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

from simulators.errors import ConfigError
from simulators.model_config import ModelConfig, resolve_model
from simulators.model_cost import family_cost, step_ops
from simulators.ops import copy_cost, gemm_cost
from simulators.precision import Precision
from simulators.units import DTYPE_BYTES, MiB

# benchmark family (measured.csv) -> simulator op families that one kernel call executes
ATTENTION_FAMILIES = ("mla_decode", "mla_prefill", "attn_decode", "attn_prefill")
SIM_FAMILIES = {fam: ("attn_core",) for fam in ATTENTION_FAMILIES}
SIM_FAMILIES["moe"] = ("moe_router", "moe_shared", "moe_routed")

KERNEL_FAMILY = {
    "mla_decode_absorbed": "mla_decode",
    "mla_decode_absorbed_einsum": "mla_decode",
    "mla_decode_naive": "mla_decode",
    "mla_prefill": "mla_prefill",
    "sdpa_decode": "attn_decode",
    "sdpa_gqa_decode": "attn_decode",
    "sdpa_repeat_decode": "attn_decode",
    "sdpa_prefill": "attn_prefill",
    "moe_loop": "moe",
    "moe_grouped": "moe",
    "gemm": "gemm",
    "copy": "copy",
    "read": "copy",
}
NAIVE_MLA_KERNELS = ("mla_decode_naive", "mla_prefill")  # costed with mla_mode="naive"
CACHE_STATES = ("warm", "cold")


@dataclass(frozen=True)
class Case:
    kernel: str
    model: str = ""  # shipped model name, optionally `name:kv_heads=N`; "" for gemm / copy
    phase: str = ""  # decode or prefill; "" for gemm / copy
    batch: int = 0
    query_len: int = 0
    context: int = 0
    dtype: str = "fp32"
    cache_state: str = "warm"  # cold: a buffer larger than the last-level cache is streamed before each sample
    m: int = 0  # GEMM dims
    n: int = 0
    k: int = 0
    n_bytes: int = 0  # copy / read buffer size

    def __post_init__(self):
        if self.kernel not in KERNEL_FAMILY:
            raise ConfigError(f"case kernel {self.kernel!r}: expected one of {', '.join(KERNEL_FAMILY)}")
        if self.cache_state not in CACHE_STATES:
            raise ConfigError(f"case cache_state {self.cache_state!r}: expected warm or cold")

    @property
    def family(self) -> str:
        return KERNEL_FAMILY[self.kernel]

    @property
    def tokens(self) -> int:
        return self.batch * self.query_len

    @property
    def case_id(self) -> str:
        parts = [self.kernel]
        if self.model:
            parts += [self.model, self.phase, f"B{self.batch}", f"S{self.query_len}", f"L{self.context}"]
        if self.m:
            parts += [f"m{self.m}", f"n{self.n}", f"k{self.k}"]
        if self.n_bytes:
            parts.append(f"{self.n_bytes}B")
        return "/".join(parts + [self.dtype, self.cache_state])

    def key(self) -> dict:
        return {"case_id": self.case_id, "kernel": self.kernel, "family": self.family, **{
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "kernel"}}


@cache
def model_config(spec: str) -> ModelConfig:
    """`deepseek-v2-lite` or `llama-3.1-8b:kv_heads=1` -> ModelConfig (unknown name: ConfigError)."""
    name, _, variant = spec.partition(":")
    m = resolve_model(name)
    if variant:
        key, _, value = variant.partition("=")
        if key != "kv_heads" or not value.isdigit() or m.num_attention_heads % int(value):
            raise ConfigError(f"model variant {spec!r}: expected name:kv_heads=N with N dividing the head count")
        m = dataclasses.replace(m, num_key_value_heads=int(value), name=spec)
    return m


def simulator_cost(case: Case) -> dict[str, float]:
    """flop, bytes_read, bytes_written of one kernel call, from the simulator's cost functions only."""
    fam = case.family
    if fam in SIM_FAMILIES:
        m = model_config(case.model)
        p = Precision.of(case.dtype, case.dtype, case.dtype)
        mode = "naive" if case.kernel in NAIVE_MLA_KERNELS else "absorbed"
        ops = step_ops(m, case.batch, case.query_len, case.context, p, phase=case.phase, mla_mode=mode)
        flop, br, bw = family_cost(ops, SIM_FAMILIES[fam])
    elif fam == "gemm":
        # fp8 GEMMs write bf16 here; the simulator's gemm_cost writes the input dtype (m*n bytes less)
        c = gemm_cost(case.m, case.n, case.k, DTYPE_BYTES[case.dtype], case.dtype)
        flop, br, bw = c.flop, c.bytes_read, c.bytes_written
    elif case.kernel == "copy":
        c = copy_cost(case.n_bytes)
        flop, br, bw = c.flop, c.bytes_read, c.bytes_written
    else:  # read: the read side of a streaming copy (the one-number result is not counted)
        c = copy_cost(case.n_bytes)
        flop, br, bw = c.flop, c.bytes_read, 0.0 * c.bytes_written
    return {"flop": float(flop), "bytes_read": float(br), "bytes_written": float(bw)}


# ---- sweeps ----------------------------------------------------------------------------------

MLA_MODEL = "deepseek-v2-lite"  # 16 heads: fits a CPU; deepseek-v3 (128 heads) on accelerators
MOE_MODEL = "deepseek-v2-lite"
# Alternative implementations timed only for comparison (einsum vs bmm, SDPA's enable_gqa and an
# explicit repeat_interleave of K/V): each does the simulator's work in a slower form, so validation
# scores the primary kernel of each family and leaves these out unless asked (--all-kernels).
COMPARISON_KERNELS = frozenset({"mla_decode_absorbed_einsum", "sdpa_gqa_decode", "sdpa_repeat_decode"})

GQA_MODEL = "llama-3.1-8b"
MQA_MODEL = f"{GQA_MODEL}:kv_heads=1"
MHA_MODEL = f"{GQA_MODEL}:kv_heads=32"


def _decode(kernel, model, B, L, dt, cache="warm") -> Case:
    return Case(kernel, model, "decode", B, 1, L, dt, cache)


def _prefill(kernel, model, B, L, dt) -> Case:
    return Case(kernel, model, "prefill", B, L, L, dt)


def _moe(kernel, model, T, dt) -> Case:
    """T tokens through one MoE layer, as a decode step of batch T (the layer sees only T = B*S)."""
    return Case(kernel, model, "decode", T, 1, 1, dt)


def gemm_cases(dt: str, square=(512, 1024, 2048), skinny_m=(1, 4, 16, 64), skinny_nk=4096) -> list[Case]:
    cases = [Case("gemm", dtype=dt, m=n, n=n, k=n) for n in square]
    return cases + [Case("gemm", dtype=dt, m=m, n=skinny_nk, k=skinny_nk) for m in skinny_m]


def stream_cases(n_bytes: int) -> list[Case]:
    return [Case("copy", dtype="fp32", n_bytes=n_bytes), Case("read", dtype="fp32", n_bytes=n_bytes)]


def quick_cases(dt: str = "fp32", stream_bytes: int = 1024 * int(MiB)) -> list[Case]:
    """~60 cases sized for a 2-core CPU in one to two minutes (V2-Lite MLA and MoE, Llama-8B GQA)."""
    c: list[Case] = []
    for B in (1, 4, 8):
        c += [_decode("mla_decode_absorbed", MLA_MODEL, B, L, dt) for L in (1024, 4096, 16384, 32768)]
    c += [_decode("mla_decode_absorbed", "deepseek-v3", 1, L, dt) for L in (4096, 32768)]  # 128 heads
    c += [_decode("mla_decode_absorbed", MLA_MODEL, 1, L, dt, "cold") for L in (4096, 32768)]
    c += [_decode("mla_decode_absorbed_einsum", MLA_MODEL, B, L, dt) for B, L in ((1, 4096), (8, 32768))]
    c += [_decode("mla_decode_naive", MLA_MODEL, B, L, dt)
          for B, L in ((1, 1024), (1, 4096), (1, 16384), (1, 32768), (4, 1024))]
    c += [_prefill("mla_prefill", MLA_MODEL, 1, L, dt) for L in (512, 1024, 2048)]
    c += [_decode("sdpa_decode", GQA_MODEL, B, L, dt) for B, L in ((1, 4096), (1, 32768), (8, 4096))]
    c += [_decode("sdpa_decode", MQA_MODEL, B, L, dt) for B, L in ((1, 32768), (8, 8192))]
    c += [_decode("sdpa_decode", MHA_MODEL, 1, 4096, dt)]
    c += [_decode(k, GQA_MODEL, 1, 32768, dt) for k in ("sdpa_gqa_decode", "sdpa_repeat_decode")]
    c += [_prefill("sdpa_prefill", GQA_MODEL, 1, L, dt) for L in (512, 1024, 2048)]
    c += [_prefill("sdpa_prefill", MQA_MODEL, 1, 2048, dt), _prefill("sdpa_prefill", MHA_MODEL, 1, 1024, dt)]
    c += [_moe(k, MOE_MODEL, T, dt) for T in (1, 16, 64, 128, 512, 1024, 2048) for k in ("moe_loop", "moe_grouped")]
    return c + gemm_cases(dt) + stream_cases(stream_bytes) + stream_cases(stream_bytes // 4)


def full_cases(dt: str = "bf16", stream_bytes: int = 4096 * int(MiB)) -> list[Case]:
    """Accelerator profile: DeepSeek-V3 dims, large batches and contexts (too big ones are skipped as OOM)."""
    c: list[Case] = []
    for model in ("deepseek-v3", MLA_MODEL):
        for B in (1, 8, 32, 64, 128):
            c += [_decode("mla_decode_absorbed", model, B, L, dt) for L in (1024, 4096, 16384, 32768, 65536, 131072)]
        for B in (1, 8, 32):
            c += [_decode("mla_decode_naive", model, B, L, dt) for L in (1024, 4096, 16384)]
        c += [_prefill("mla_prefill", model, 1, L, dt) for L in (1024, 4096, 16384)]
        c += [_decode("mla_decode_absorbed", model, 1, L, dt, "cold") for L in (1024, 4096)]
    for model in (GQA_MODEL, "llama-3.1-70b", MQA_MODEL):
        for B in (1, 8, 32, 128):
            c += [_decode("sdpa_decode", model, B, L, dt) for L in (4096, 32768, 131072)]
        c += [_prefill("sdpa_prefill", model, 1, L, dt) for L in (1024, 4096, 16384)]
    for model in ("deepseek-v3", MOE_MODEL):
        c += [_moe(k, model, T, dt) for T in (1, 8, 64, 256, 1024, 4096, 16384) for k in ("moe_loop", "moe_grouped")]
    c += gemm_cases(dt, square=(1024, 2048, 4096, 8192, 16384), skinny_m=(1, 4, 16, 64, 256), skinny_nk=8192)
    return c + stream_cases(stream_bytes)


def calibration_cases(device_kind: str, stream_bytes: int, quick: bool = True) -> list[Case]:
    """GEMM (per dtype the device computes in) and streaming copy / read."""
    if device_kind == "cpu":
        c = gemm_cases("fp32")
        bf16_sizes = (512, 1024, 2048) if quick else (512, 1024, 2048, 4096)
        c += [Case("gemm", dtype="bf16", m=n, n=n, k=n) for n in bf16_sizes]
        return c + stream_cases(stream_bytes)
    square = (2048, 4096, 8192) if quick else (2048, 4096, 8192, 16384)
    c = gemm_cases("bf16", square=square, skinny_m=(1, 4, 16, 64, 256), skinny_nk=8192)
    c += [Case("gemm", dtype=dt, m=n, n=n, k=n) for dt in ("fp32", "fp8") for n in square]
    return c + stream_cases(stream_bytes)
