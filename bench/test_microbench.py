"""pytest-benchmark entry: every kernel family on small shapes, with the simulator's FLOPs and bytes
in `benchmark.extra_info`. Run with `pytest bench/ --benchmark-only` (plain `pytest` collects only
tests/, see pyproject.toml testpaths). Each kernel is checked against its reference first."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytest_benchmark")

from bench import workloads  # noqa: E402
from bench.cases import Case, simulator_cost  # noqa: E402
from bench.device import resolve_device, set_threads  # noqa: E402

SMALL = [
    Case("mla_decode_absorbed", "deepseek-v2-lite", "decode", 1, 1, 4096),
    Case("mla_decode_absorbed", "deepseek-v2-lite", "decode", 4, 1, 1024),
    Case("mla_decode_naive", "deepseek-v2-lite", "decode", 1, 1, 1024),
    Case("mla_prefill", "deepseek-v2-lite", "prefill", 1, 256, 256),
    Case("sdpa_decode", "llama-3.1-8b", "decode", 1, 1, 4096),
    Case("sdpa_decode", "llama-3.1-8b:kv_heads=1", "decode", 1, 1, 4096),
    Case("sdpa_prefill", "llama-3.1-8b", "prefill", 1, 256, 256),
    Case("moe_loop", "deepseek-v2-lite", "decode", 16, 1, 1),
    Case("moe_grouped", "deepseek-v2-lite", "decode", 16, 1, 1),
    Case("gemm", m=512, n=512, k=512),
    Case("gemm", m=16, n=4096, k=4096),
    Case("copy", n_bytes=64 << 20),
]


@pytest.fixture(scope="module")
def device():
    dev = resolve_device("auto")
    if dev.kind == "cpu":
        set_threads()
    return dev


@pytest.mark.parametrize("case", SMALL, ids=[c.case_id for c in SMALL])
def test_kernel(benchmark, device, case):
    if case.family != "copy":  # the device's benchmark dtype: fp32 on CPU, bf16 on CUDA / NPU
        case = dataclasses.replace(case, dtype=device.dtype)
    variant = workloads.check_case(case, device)  # raises KernelCheckError before any timing
    wl = workloads.build(case, device, variant)
    cost = simulator_cost(case)
    benchmark.extra_info.update({"case_id": case.case_id, "family": case.family, "variant": variant,
                                 "flop": cost["flop"], "bytes": cost["bytes_read"] + cost["bytes_written"],
                                 "bytes_read": cost["bytes_read"], "bytes_written": cost["bytes_written"]})

    def call():
        wl.fn()
        device.synchronize()

    benchmark(call)
    if wl.expert_load is not None:
        benchmark.extra_info["expert_load"] = wl.expert_load
