"""Storage dtypes of weights, activations and KV cache, and the nominal compute dtype of an op.

A checkpoint stores its tensors in up to three formats (DeepSeek-V3 / V3.2 / V4):
  weight  the quantised linear layers (FP8 e4m3 with one scale per 128x128 block)
  expert  the routed experts (V4: MXFP4 = FP4 E2M1 values + one E8M0 scale per 32 values)
  keep    what the checkpoint keeps unquantised (embedding, LM head, router, V4's compressors
          and indexer head weights): its torch_dtype, BF16
A `--weight-dtype` override stores every weight in that one dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

from .units import DTYPE_BYTES, canonical_dtype

_WIDTH_ORDER = ("fp4", "fp6", "fp8", "int8", "fp16", "bf16", "tf32", "fp32")

# MXFP4 (OCP Microscaling): 4-bit E2M1 values, one 8-bit E8M0 scale per block of 32 values.
# DeepSeek-V4 experts: w1 [3072, 3584] int8 (2 values per byte) + scale [3072, 224] F8_E8M0
# (shared/reference/deepseek-v4.md §1.3, S3): 7168 / 224 = 32 values per scale.
MXFP4_VALUE_BITS = 4
MXFP4_SCALE_BITS = 8
MXFP4_BLOCK_VALUES = 32
MXFP4_BYTES_PER_VALUE = (MXFP4_VALUE_BITS + MXFP4_SCALE_BITS / MXFP4_BLOCK_VALUES) / 8  # 4.25 bits

FP8_BLOCK_VALUES = 128 * 128  # quantization_config weight_block_size [128, 128]


@dataclass(frozen=True)
class Precision:
    weight: str = "bf16"
    act: str = "bf16"
    kv: str = "bf16"
    expert: str = ""  # routed-expert storage dtype ("" = weight)
    keep: str = ""  # dtype of the unquantised tensors ("" = weight)
    indexer: str = "fp4"  # V4 indexer-key cache: fp4 (Blackwell layout, report §5.2.1) or fp8 (Hopper)
    weight_scale_bytes: float = 0.0  # bytes of one block scale of the FP8 weights (fp32: 4, ue8m0: 1)

    @classmethod
    def of(cls, weight: str = "bf16", act: str = "bf16", kv: str = "bf16", *, expert: str = "", keep: str = "",
           indexer: str = "fp4", weight_scale_bytes: float = 0.0) -> Precision:
        return cls(
            canonical_dtype(weight, "weight dtype"),
            canonical_dtype(act, "activation dtype"),
            canonical_dtype(kv, "KV dtype"),
            canonical_dtype(expert, "expert dtype") if expert else "",
            canonical_dtype(keep, "weight dtype") if keep else "",
            canonical_dtype(indexer, "indexer dtype"),
            float(weight_scale_bytes),
        )

    @classmethod
    def for_model(cls, m, weight: str | None = None, act: str = "bf16", kv: str = "bf16",
                  indexer: str = "fp4") -> Precision:
        """The checkpoint's formats (weight None), or one override dtype for every weight."""
        if weight is not None:
            return cls.of(weight, act, kv, indexer=indexer)
        return cls.of(m.weight_dtype, act, kv, expert=m.expert_dtype or m.weight_dtype,
                      keep=m.unquantized_dtype or m.weight_dtype, indexer=indexer,
                      weight_scale_bytes=m.weight_scale_bytes)

    @property
    def w_bytes(self) -> float:
        """Bytes per value of the quantised linear layers, block scales included."""
        scale = self.weight_scale_bytes / FP8_BLOCK_VALUES if self.weight == "fp8" else 0.0
        return DTYPE_BYTES[self.weight] + scale

    @property
    def expert_w_bytes(self) -> float:
        """Bytes per routed-expert value: MXFP4 counts its E8M0 scales (4.25 bits)."""
        dtype = self.expert or self.weight
        if dtype == "fp4":
            return MXFP4_BYTES_PER_VALUE
        if dtype == self.weight:
            return self.w_bytes
        return DTYPE_BYTES[dtype]

    @property
    def keep_w_bytes(self) -> float:
        return DTYPE_BYTES[self.keep or self.weight]

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
    def keep_gemm_dtype(self) -> str:
        """GEMMs over unquantised weights (BF16 LM head, router, compressors) run in that dtype."""
        return min(self.keep or self.weight, self.act, key=_WIDTH_ORDER.index)

    @property
    def expert_gemm_dtype(self) -> str:
        """Nominal dtype of the routed-expert GEMM. FP4 weights pair with FP8 activations
        (DeepGEMM's fp8 x fp4 MegaMoE, shared/reference/deepseek-v4.md §1.8): the FP8 rate, on a
        device that has an FP8 x FP4 MMA. `expert_compute_dtype` maps it to other devices."""
        dtype = self.expert or self.weight
        if dtype == "fp4":
            return min("fp8", self.act, key=_WIDTH_ORDER.index)
        return min(dtype, self.act, key=_WIDTH_ORDER.index)

    @property
    def attn_dtype(self) -> str:
        """Attention arithmetic runs in the activation dtype."""
        return self.act


def expert_compute_dtype(p: Precision, hw) -> str:
    """The dtype a device really runs FP4 routed experts in (issue 9 §2):
    FP8 x FP4 MMA (a device with an FP4 peak: Blackwell) -> the FP8 rate;
    FP8 but no FP4 (Hopper, MI300X): weights dequantised to BF16 (W4A16) -> the BF16 rate;
    neither (Ascend 910B/910C, A100): INT8. Non-FP4 experts keep `expert_gemm_dtype`."""
    if (p.expert or p.weight) != "fp4":
        return p.expert_gemm_dtype
    if hw.peak("fp4"):
        return p.expert_gemm_dtype
    if hw.peak("fp8"):
        return "bf16"
    if hw.peak("int8"):
        return "int8"
    return "bf16"


def expert_compute_note(p: Precision, hw) -> str:
    """One line for a plan's assumptions: at which peak FP4 routed experts run on `hw` and why;
    '' when the experts are not FP4. The FP4 peak is used only where the profile lists one (with
    its source); elsewhere the fallback of `expert_compute_dtype` is named as such."""
    if (p.expert or p.weight) != "fp4":
        return ""
    dtype = expert_compute_dtype(p, hw)
    fp4 = hw.peak_flop_per_s.get("fp4")
    if fp4 is not None and dtype == "fp4":
        return f"FP4 experts x FP4 activations at the FP4 peak ({fp4.status} in the {hw.name} profile)"
    if fp4 is not None:
        return f"FP4 experts: FP8 x FP4 MMA at the FP8 peak (the {fp4.status} FP4 peak needs FP4 activations)"
    how = "dequantised to BF16 (W4A16)" if dtype == "bf16" else f"run as {dtype.upper()}"
    return f"FP4 experts: no FP4 peak in the {hw.name} profile: {how} at the {dtype.upper()} peak (fallback)"


def indexer_dtype_for(hw) -> str:
    """V4 indexer-key cache format by device: FP4 + UE8M0 scales where the device computes FP4
    (DeepGEMM tests gate the FP4 path on SM100), else FP8 + an FP32 scale (the Hopper path)."""
    return "fp4" if hw is not None and hw.peak("fp4") else "fp8"
