"""Storage dtypes of weights, activations and KV cache, and the nominal compute dtype of an op."""

from __future__ import annotations

from dataclasses import dataclass

from .units import DTYPE_BYTES, canonical_dtype

_WIDTH_ORDER = ("fp4", "fp6", "fp8", "int8", "fp16", "bf16", "tf32", "fp32")


@dataclass(frozen=True)
class Precision:
    weight: str = "bf16"
    act: str = "bf16"
    kv: str = "bf16"

    @classmethod
    def of(cls, weight: str = "bf16", act: str = "bf16", kv: str = "bf16") -> Precision:
        return cls(
            canonical_dtype(weight, "weight dtype"),
            canonical_dtype(act, "activation dtype"),
            canonical_dtype(kv, "KV dtype"),
        )

    @property
    def w_bytes(self) -> float:
        return DTYPE_BYTES[self.weight]

    @property
    def a_bytes(self) -> float:
        return DTYPE_BYTES[self.act]

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.kv]

    @property
    def gemm_dtype(self) -> str:
        """Weight GEMMs run in the narrower of weight and activation dtype (FP8 weights imply FP8
        GEMMs with quantised activations, as in DeepSeek-V3 inference)."""
        return min(self.weight, self.act, key=_WIDTH_ORDER.index)

    @property
    def attn_dtype(self) -> str:
        """Attention arithmetic runs in the activation dtype."""
        return self.act
