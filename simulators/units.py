"""The only scale constants and dtype sizes. SI inside; conversions only at the edges."""

from __future__ import annotations

from .errors import ConfigError

# Decimal (SI) scales: vendors quote GB, TB/s, TFLOPS in powers of ten.
KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
# Binary scales: memory capacities reported by software (GiB) are powers of two.
KiB = 2.0**10
MiB = 2.0**20
GiB = 2.0**30
TiB = 2.0**40

GFLOP = 1e9
TFLOP = 1e12
PFLOP = 1e15

MS = 1e-3
US = 1e-6

# Bytes per element. fp6 is the DeepSeek-V2 paper's "6 bits on average" KV quantisation.
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,  # stored as fp32; tf32 only names the tensor-core compute mode
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp6": 0.75,
    "fp4": 0.5,
}

# Aliases accepted on input, mapped to the canonical names above.
DTYPE_ALIASES: dict[str, str] = {
    "float32": "fp32",
    "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float8": "fp8",
    "fp8_e4m3": "fp8",
    "e4m3": "fp8",
    "float8_e4m3fn": "fp8",
    "int4": "fp4",
    "nvfp4": "fp4",
    "mxfp4": "fp4",
}

# When a device has no peak for a compute dtype, the kernel runs in the next wider one.
COMPUTE_FALLBACK: dict[str, str] = {
    "fp4": "fp8",
    "fp6": "fp8",
    "fp8": "bf16",
    "int8": "bf16",
    "fp16": "bf16",
    "bf16": "fp32",
    "tf32": "fp32",
}


def canonical_dtype(name: str, where: str = "dtype") -> str:
    """Return the canonical dtype name or raise a one-line ConfigError."""
    key = str(name).strip().lower()
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        valid = ", ".join(sorted(DTYPE_BYTES))
        raise ConfigError(f"{where}: unknown dtype {name!r}; expected one of {valid}")
    return key


def dtype_bytes(name: str) -> float:
    """Bytes per element of a dtype (fractional for sub-byte formats)."""
    return DTYPE_BYTES[canonical_dtype(name)]
