"""Calibration kernels: achievable GEMM FLOP/s and streaming bytes/s of the device.

Shape legend
    M, N, K   GEMM: C[M, N] = A[M, K] @ B[K, N]   (skinny GEMMs: M = 1..64 rows, large K, N)
    n         elements of a streamed buffer

fp8 GEMMs (CUDA only, where torch._scaled_mm runs) take A [M, K] row-major and B [K, N]
column-major in float8_e4m3fn with unit scales and write bf16.
"""

from __future__ import annotations

import torch

from .common import KernelCheckError, assert_close, random_tensor, seeded

FP8 = getattr(torch, "float8_e4m3fn", None)


def gemm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.mm(a, b)


def gemm_fp8(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch._scaled_mm(a, b, scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16)


def copy(dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Streaming copy: read src once, write dst once."""
    return dst.copy_(src)


READ_ROW_ELEMENTS = 1024


def read(src: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
    """Read-only streaming reduction: row sums of src viewed as [n / 1024, 1024], as a matrix-vector
    product (the GEMV access pattern of decode). Reads src once; writes n / 1024 numbers (0.1%).
    Which read form streams fastest depends on the CPU: on the Ice Lake guest this one, ~15% over
    src.sum(); on the Zen 3 guest (AVX2) it reached half of sum's bandwidth beyond the LLC."""
    return torch.mv(src.view(-1, ones.shape[0]), ones)


def read_sum(src: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
    """Read-only streaming reduction as one sum: reads src once, writes one number."""
    return src.sum()


def read_amax(src: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
    """Read-only streaming reduction as one max: reads src once, writes one number. No add chain: in
    cache it outran sum by up to 1.3x on the Zen 3 guest, where sum is bound by its adds."""
    return src.amax()


# the benchmark races them at each case's own size and times the fastest (bench.workloads.race)
READ_FORMS = {"mv": read, "sum": read_sum, "amax": read_amax}
DISPATCH_OPS = 200  # tiny ops per dispatch sample


def make_dispatch(device):
    """A call of DISPATCH_OPS one-element in-place adds: its time is all per-op dispatch overhead."""
    a = torch.zeros(1, device=device)

    def fn():
        for _ in range(DISPATCH_OPS):
            a.add_(1.0)
        return a

    return fn


def make_gemm_inputs(M: int, N: int, K: int, device, dtype_name: str, seed: int = 0) -> dict:
    """A [M, K], B [K, N] with O(1) outputs; fp8 builds B column-major as torch._scaled_mm wants."""
    g = seeded(seed, device)
    if dtype_name == "fp8":
        if FP8 is None:
            raise RuntimeError("fp8 GEMM: this torch has no float8_e4m3fn")
        a = random_tensor((M, K), device, torch.float32, 1.0, g).to(FP8)
        b = random_tensor((N, K), device, torch.float32, K**-0.5, g).to(FP8).t()  # [K, N], column-major
        return {"a": a, "b": b, "scale": torch.ones((), device=device)}
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    return {"a": random_tensor((M, K), device, dtype, 1.0, g), "b": random_tensor((K, N), device, dtype, K**-0.5, g)}


def run_gemm(x: dict) -> torch.Tensor:
    return gemm_fp8(**x) if "scale" in x else gemm(x["a"], x["b"])


def make_stream_inputs(n_bytes: int, device, dtype=torch.float32) -> dict:
    """src filled with values (untouched torch.empty pages all map to one zero page and read from
    cache), dst written once so its pages are resident before timing."""
    n = n_bytes // torch.tensor([], dtype=dtype).element_size()
    n -= n % READ_ROW_ELEMENTS
    src = random_tensor((n,), device, dtype, 1.0)
    dst = torch.zeros(n, device=device, dtype=dtype)
    return {"src": src, "dst": dst, "ones": torch.ones(READ_ROW_ELEMENTS, device=device, dtype=dtype)}


def check(device, dtype_name: str, kernels=None) -> None:
    """GEMM against float64 on small shapes (square and skinny); copy exact; read against float64."""
    names = list(kernels or ("gemm", "copy", "read"))
    if "gemm" in names:
        for M, N, K in ((64, 48, 80), (1, 96, 128), (16, 64, 256)):
            x = make_gemm_inputs(M, N, K, device, dtype_name, seed=M)
            ref = x["a"].double() @ x["b"].double()
            out = run_gemm(x)
            torch_dtype = torch.bfloat16 if dtype_name == "fp8" else out.dtype  # fp8 inputs are exact in bf16 out
            assert_close(out, ref, torch_dtype, f"gemm[{dtype_name}] vs float64 at M={M} N={N} K={K}")
    if "copy" in names or "read" in names:
        x = make_stream_inputs(1 << 16, device)
        if "copy" in names and not torch.equal(copy(x["dst"], x["src"]), x["src"]):
            raise KernelCheckError("copy: destination differs from source")
        if "read" in names:
            ref = x["src"].double().view(-1, READ_ROW_ELEMENTS).sum(dim=1)
            assert_close(read(x["src"], x["ones"]), ref, x["src"].dtype, "read (row sums) vs float64")
            total = read_sum(x["src"], x["ones"]).double()
            assert_close(total / ref.numel(), ref.sum() / ref.numel(), x["src"].dtype, "read (sum) vs float64")
            if not torch.equal(read_amax(x["src"], x["ones"]), x["src"].max()):
                raise KernelCheckError("read (amax): differs from the maximum of the source")
