"""Benchmark cases keyed like the simulator's, their FLOPs and bytes (from the simulator only),
and the sweeps (quick for a small CPU, full for accelerators, calibration).

Every attention / MoE case names a shipped model whose dimensions it uses. Variants with a
different number of KV heads (MQA, MHA) are written `model:kv_heads=N` and costed by the simulator
with that ModelConfig field replaced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .registry import COMPARISON_KERNELS, causal_tiles, spec  # noqa: F401 - re-exported for callers

from simulators.errors import ConfigError
from simulators.model_config import ModelConfig
from simulators.model_cost import family_cost, family_rows, step_ops
from simulators.ops import copy_cost, gemm_cost
from simulators.precision import Precision
from simulators.variants import resolve_variant
from simulators.units import DTYPE_BYTES, MiB

CACHE_STATES = ("warm", "cold")
ROLES = ("case", "reference")  # reference: defines a measured rate curve (never scored); case: scored


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
    role: str = "case"  # not part of the case id: a shape is either a reference or a scored case

    def __post_init__(self):
        spec(self.kernel)
        if self.cache_state not in CACHE_STATES:
            raise ConfigError(f"case cache_state {self.cache_state!r}: expected warm or cold")
        if self.role not in ROLES:
            raise ConfigError(f"case role {self.role!r}: expected case or reference")

    @property
    def family(self) -> str:
        return spec(self.kernel).family

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

    @classmethod
    def from_row(cls, row: dict) -> Case:
        """The case of a measured.csv row (older runs: role from the calibration grid)."""
        def num(k):
            v = row.get(k, 0)
            return int(v) if v == v and v not in (None, "") else 0

        def text(k, default=""):
            v = row.get(k, default)
            return default if v is None or v != v else str(v)

        kernel = text("kernel")
        role = text("role", "") or ("reference" if kernel in ("gemm", "read", "dispatch") else "case")
        return cls(kernel, text("model"), text("phase"), num("batch"), num("query_len"), num("context"),
                   text("dtype", "fp32"), text("cache_state", "warm"), num("m"), num("n"), num("k"),
                   num("n_bytes"), role)


def model_config(spec: str) -> ModelConfig:
    """`deepseek-v2-lite` or `llama-3.1-8b:kv_heads=1` -> ModelConfig (unknown name: ConfigError)."""
    return resolve_variant(spec)


def simulator_cost(case: Case, device_kind: str = "cpu") -> dict[str, float]:
    """flop, bytes_read, bytes_written and rows (per reused operand) of one kernel call on a device of
    this kind (cpu, cuda, npu: the kernel's attention tiles, `registry.causal_tiles`), from the
    simulator's cost functions only."""
    ks = spec(case.kernel)
    if ks.sim_families:
        m = model_config(case.model)
        # every tensor in the case's dtype, the V4 indexer keys too (no FP4/FP8 layout)
        p = Precision.of(case.dtype, case.dtype, case.dtype, indexer=case.dtype)
        ops = step_ops(m, case.batch, case.query_len, case.context, p, phase=case.phase, mla_mode=ks.mla_mode,
                       causal_tiles=causal_tiles(ks, device_kind))
        if ks.sim_ops:  # one op of a family (V4: one layer kind's compressor / core attention)
            ops = [o for o in ops if o.op in ks.sim_ops]
        flop, br, bw = family_cost(ops, ks.sim_families)
        rows = family_rows(ops, ks.sim_families)
    elif ks.family == "gemm":
        # fp8 GEMMs write bf16 here; the simulator's gemm_cost writes the input dtype (m*n bytes less)
        c = gemm_cost(case.m, case.n, case.k, DTYPE_BYTES[case.dtype], case.dtype)
        flop, br, bw, rows = c.flop, c.bytes_read, c.bytes_written, c.rows
    elif case.kernel == "copy":
        c = copy_cost(case.n_bytes)
        flop, br, bw, rows = c.flop, c.bytes_read, c.bytes_written, c.rows
    elif case.kernel == "read":  # the read side of a streaming copy (the one-number result is not counted)
        c = copy_cost(case.n_bytes)
        flop, br, bw, rows = c.flop, c.bytes_read, 0.0 * c.bytes_written, c.rows
    else:  # dispatch: tiny ops whose time is all overhead; no work worth counting
        flop, br, bw, rows = 0.0, 0.0, 0.0, float("inf")
    return {"flop": float(flop), "bytes_read": float(br), "bytes_written": float(bw), "rows": float(rows)}


# ---- sweeps ----------------------------------------------------------------------------------

MLA_MODEL = "deepseek-v2-lite"  # 16 heads: fits a CPU; deepseek-v3 (128 heads) on accelerators
MOE_MODEL = "deepseek-v2-lite"
GQA_MODEL = "llama-3.1-8b"
MQA_MODEL = f"{GQA_MODEL}:kv_heads=1"
GQA2_MODEL = f"{GQA_MODEL}:kv_heads=2"
MHA_MODEL = f"{GQA_MODEL}:kv_heads=32"


def _decode(kernel, model, B, L, dt, cache="warm") -> Case:
    return Case(kernel, model, "decode", B, 1, L, dt, cache)


def _prefill(kernel, model, B, L, dt) -> Case:
    return Case(kernel, model, "prefill", B, L, L, dt)


def _moe(kernel, model, T, dt) -> Case:
    """T tokens through one MoE layer, as a decode step of batch T (the layer sees only T = B*S)."""
    return Case(kernel, model, "decode", T, 1, 1, dt)


V4_CPU_MODEL = "deepseek-v4-flash"  # the smaller V4: d 4096, 64 heads, top-k 512
V4_GPU_MODEL = "deepseek-v4-pro"


def v4_cases(dt: str, model: str, compress_csa, compress_hca, indexer, csa, hca, mhc_tokens,
             cold=()) -> list[Case]:
    """DeepSeek-V4 kernels: compressors on a prefill chunk from position 0 ((B, S), S a multiple of
    the ratio), the indexer and the CSA / HCA core on a decode step ((B, L)), mHC on T tokens;
    `cold` (kernel, B, S or L) repeats a few after a cache flush."""
    c = [_prefill("v4_compressor_csa", model, B, S, dt) for B, S in compress_csa]
    c += [_prefill("v4_compressor_hca", model, B, S, dt) for B, S in compress_hca]
    c += [_decode("v4_indexer_topk", model, B, L, dt) for B, L in indexer]
    c += [_decode("v4_csa_decode", model, B, L, dt) for B, L in csa]
    c += [_decode("v4_hca_decode", model, B, L, dt) for B, L in hca]
    c += [_moe("v4_mhc", model, T, dt) for T in mhc_tokens]  # T tokens: a decode step of batch T
    for kernel, B, n in cold:
        if kernel.startswith("v4_compressor"):
            c.append(dataclasses.replace(_prefill(kernel, model, B, n, dt), cache_state="cold"))
        elif kernel == "v4_mhc":
            c.append(dataclasses.replace(_moe(kernel, model, B, dt), cache_state="cold"))
        else:
            c.append(_decode(kernel, model, B, n, dt, "cold"))
    return c


def v4_quick_cases(dt: str) -> list[Case]:
    """V4-Flash dims, cache-resident (a few MiB) to DRAM-resident (>= 80 MiB), each call < ~0.15 s
    on a 2-vCPU host: 8-10 scored cases per family."""
    return v4_cases(
        dt, V4_CPU_MODEL,
        compress_csa=((1, 16), (1, 64), (1, 256), (1, 512)),  # BF16-class weights 2 x 4096 x 1024: 34 MB fp32
        compress_hca=((1, 128), (1, 256), (1, 512)),
        indexer=((1, 4096), (1, 16384), (1, 65536), (2, 8192), (4, 16384), (4, 65536), (8, 32768), (16, 65536)),
        csa=((1, 4096), (4, 8192), (16, 16384), (64, 4096)),
        hca=((1, 16384), (1, 65536), (8, 65536), (32, 32768), (64, 65536)),
        mhc_tokens=(1, 4, 16, 64, 256, 1024, 2048),
        cold=(("v4_compressor_csa", 1, 64), ("v4_compressor_hca", 1, 128), ("v4_indexer_topk", 1, 16384),
              ("v4_csa_decode", 1, 4096), ("v4_mhc", 64, 0)),
    )


def v4_full_cases(dt: str) -> list[Case]:
    """V4-Pro dims on an accelerator (too big ones are skipped as OOM)."""
    return v4_cases(
        dt, V4_GPU_MODEL,
        compress_csa=[(B, S) for B in (1, 8) for S in (512, 2048, 8192)],
        compress_hca=[(B, S) for B in (1, 8) for S in (1024, 4096, 16384)],
        indexer=[(B, L) for B in (1, 8, 32, 128) for L in (16384, 131072, 1048576)],
        csa=[(B, L) for B in (1, 8, 32, 128) for L in (16384, 131072, 1048576)],
        hca=[(B, L) for B in (1, 8, 32, 128) for L in (16384, 131072, 1048576)],
        mhc_tokens=(1, 8, 64, 512, 4096, 16384),
    )


def gemm_cases(dt: str, square=(512, 1024, 2048), skinny_m=(1, 4, 16, 64), skinny_nk=4096,
               role: str = "reference") -> list[Case]:
    """The GEMM rate curve by rows: square GEMMs (rows = n) and skinny ones (rows = m, large n = k)."""
    cases = [Case("gemm", dtype=dt, m=n, n=n, k=n, role=role) for n in square]
    return cases + [Case("gemm", dtype=dt, m=m, n=skinny_nk, k=skinny_nk, role=role) for m in skinny_m]


def read_sizes(stream_bytes: int, smallest: int = int(MiB)) -> list[int]:
    """Reference read sizes: x2 steps from 1 MiB (cache-resident) up to stream_bytes (DRAM). x2, not
    coarser: a host's bandwidth falls 2-3x across its last-level cache within one factor of 2-4 in
    size, and a log-log interpolation over a wider step misses that cliff."""
    sizes, n = [], smallest
    while n < stream_bytes:
        sizes.append(n)
        n *= 2
    return sizes + [stream_bytes]


def stream_cases(n_bytes: int, role: str = "reference") -> list[Case]:
    return [Case("read", dtype="fp32", n_bytes=n_bytes, role=role)]


def dispatch_case() -> Case:
    return Case("dispatch", dtype="fp32", role="reference")


def scored_peak_cases(dt: str, stream_bytes: int, nk: int = 4096) -> list[Case]:
    """GEMM, read and copy shapes OFF the reference grid, predicted from the curves and scored (a figure
    that defined a curve never checks it): 8 of each, cache- to DRAM-resident."""
    c = [Case("gemm", dtype=dt, m=m, n=nk, k=nk) for m in (2, 8, 32, 128)]
    c += [Case("gemm", dtype=dt, m=m, n=nk // 2, k=nk // 2) for m in (48, 256)]
    c += [Case("gemm", dtype=dt, m=n, n=n, k=n) for n in (768, 1536)]
    grid = set(read_sizes(stream_bytes))
    # 1.5 x 2^k MiB: between the reference sizes, cache- to DRAM-resident (8 of them below stream_bytes)
    sizes = [int(1.5 * MiB) << k for k in range(16) if int(1.5 * MiB) << k < stream_bytes][-8:]
    c += [Case("read", dtype="fp32", n_bytes=n) for n in sizes if n not in grid]  # off the reference grid
    c += [Case("copy", dtype="fp32", n_bytes=n) for n in sizes]
    return c


def quick_cases(dt: str = "fp32", stream_bytes: int = 1024 * int(MiB)) -> list[Case]:
    """~140 scored cases sized for a 2-core CPU in about two and a half minutes (V2-Lite MLA and MoE,
    Llama-8B GQA/MQA/MHA, V4-Flash compressor / indexer / sparse attention / mHC): at least 8 per
    family, cache- and DRAM-resident sizes."""
    c: list[Case] = []
    for B in (1, 4, 8):
        c += [_decode("mla_decode_absorbed", MLA_MODEL, B, L, dt) for L in (1024, 4096, 16384, 32768)]
    c += [_decode("mla_decode_absorbed", "deepseek-v3", 1, L, dt) for L in (4096, 32768)]  # 128 heads
    c += [_decode("mla_decode_absorbed", MLA_MODEL, 1, L, dt, "cold") for L in (4096, 32768)]
    c += [_decode(k, MLA_MODEL, B, L, dt) for B, L in ((1, 4096), (8, 32768))
          for k in ("mla_decode_absorbed_einsum", "mla_decode_absorbed_sdpa")]
    c += [_decode("mla_decode_naive", MLA_MODEL, B, L, dt)
          for B, L in ((1, 1024), (1, 4096), (1, 16384), (1, 32768), (4, 1024), (2, 4096), (4, 2048), (8, 512))]
    c += [_prefill("mla_prefill", MLA_MODEL, 1, L, dt) for L in (256, 512, 768, 1024, 1536, 2048)]
    c += [_prefill("mla_prefill", MLA_MODEL, 2, L, dt) for L in (512, 1024)]
    c += [_decode("sdpa_decode", GQA_MODEL, B, L, dt) for B, L in ((1, 4096), (1, 32768), (8, 4096), (4, 16384))]
    # 16 and 32 query rows per KV head: the compute-bound decodes (with only two, leave-one-out had
    # one left to fit the family's compute efficiency)
    c += [_decode("sdpa_decode", MQA_MODEL, B, L, dt) for B, L in ((1, 32768), (8, 8192), (2, 16384), (4, 4096))]
    c += [_decode("sdpa_decode", GQA2_MODEL, B, L, dt) for B, L in ((1, 16384), (4, 8192))]
    c += [_decode("sdpa_decode", MHA_MODEL, B, 4096, dt) for B in (1, 4)]
    c += [_decode(k, GQA_MODEL, 1, 32768, dt) for k in ("sdpa_gqa_decode", "sdpa_repeat_decode")]
    c += [_prefill("sdpa_prefill", GQA_MODEL, 1, L, dt) for L in (512, 1024, 1536, 2048)]
    c += [_prefill("sdpa_prefill", MQA_MODEL, 1, L, dt) for L in (1024, 2048)]
    c += [_prefill("sdpa_prefill", MHA_MODEL, 1, L, dt) for L in (512, 1024)]
    c += [_moe(k, MOE_MODEL, T, dt) for T in (1, 16, 64, 128, 512, 1024, 2048) for k in ("moe_loop", "moe_grouped")]
    c += v4_quick_cases(dt)
    return c + scored_peak_cases(dt, stream_bytes)


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
    c += v4_full_cases(dt)
    return c + scored_peak_cases(dt, stream_bytes, nk=8192)


def calibration_cases(device_kind: str, stream_bytes: int, quick: bool = True) -> list[Case]:
    """Reference rows (role reference): GEMM rate curves per dtype the device computes in, the read
    bandwidth curve and the dispatch time."""
    reads = [c for n in read_sizes(stream_bytes) for c in stream_cases(n)]
    if device_kind == "cpu":
        c = gemm_cases("fp32", skinny_m=(1, 4, 16, 64, 256))
        bf16_sizes = (512, 1024, 2048) if quick else (512, 1024, 2048, 4096)
        c += [Case("gemm", dtype="bf16", m=n, n=n, k=n, role="reference") for n in bf16_sizes]
        return c + reads + [dispatch_case()]
    square = (2048, 4096, 8192) if quick else (2048, 4096, 8192, 16384)
    c = gemm_cases("bf16", square=square, skinny_m=(1, 4, 16, 64, 256), skinny_nk=8192)
    c += [Case("gemm", dtype=dt, m=n, n=n, k=n, role="reference") for dt in ("fp32", "fp8") for n in square]
    return c + reads + [dispatch_case()]
