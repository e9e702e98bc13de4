# %% [markdown]
# # KV-cache claims, reproduced
#
# Claims people bring ("MLA cuts the KV cache by over 90%") checked against the papers'
# own tables with the simulator's cost functions. Percent-format notebook: run it with
# `python notebooks/kv_cache_claims.py`, or open it in Jupyter with jupytext. Every number
# printed is computed here; every assertion states its source and tolerance.

# %%
from dataclasses import replace

from simulators.attention import kv_bytes_per_token, kv_elements_per_token_per_layer
from simulators.model_config import resolve_model
from simulators.params import count_params
from simulators.units import DTYPE_BYTES, KB

BF16, FP6 = DTYPE_BYTES["bf16"], DTYPE_BYTES["fp6"]
v2, v3 = resolve_model("deepseek-v2"), resolve_model("deepseek-v3")
llm67b, qwen72, llama405 = resolve_model("deepseek-llm-67b"), resolve_model("qwen2.5-72b"), resolve_model(
    "llama-3.1-405b")

# %% [markdown]
# ## 1. DeepSeek-V2 paper, Table 1: KV elements per token
# MHA 2·n_h·d_h·l, GQA 2·n_g·d_h·l, MQA 2·d_h·l, MLA (d_c + d_h^R)·l ≈ 9/2·d_h·l.

# %%
d_h, l = v2.qk_nope_head_dim, v2.num_hidden_layers
as_mha = replace(v2, kv_lora_rank=0, head_dim=d_h, num_key_value_heads=v2.num_attention_heads)
rows = {
    "MHA (same dims)": kv_elements_per_token_per_layer(as_mha) * l,
    "GQA, 8 groups": kv_elements_per_token_per_layer(replace(as_mha, num_key_value_heads=8)) * l,
    "MQA": kv_elements_per_token_per_layer(replace(as_mha, num_key_value_heads=1)) * l,
    "MLA (DeepSeek-V2)": kv_elements_per_token_per_layer(v2) * l,
}
for name, n in rows.items():
    print(f"{name:20s} {n:>10,} elements/token  ({n / (d_h * l):.2f} d_h l)")
assert rows["MLA (DeepSeek-V2)"] == 9 / 2 * d_h * l  # Table 1: (d_c + d_h^R) l = 9/2 d_h l, exact

# %% [markdown]
# ## 2. "Reduces the KV cache by 93.3%" (DeepSeek-V2 abstract, vs DeepSeek 67B)
# The 93.3% holds with V2's deployed 6-bit KV quantisation (§3.2.3); in BF16 it is 82%.

# %%
base = kv_bytes_per_token(llm67b, BF16)
cut_bf16 = 1 - kv_bytes_per_token(v2, BF16) / base
cut_fp6 = 1 - kv_bytes_per_token(v2, FP6) / base
print(f"V2 vs 67B, both BF16:  {cut_bf16:.1%} smaller")
print(f"V2 6-bit vs 67B BF16:  {cut_fp6:.1%} smaller   (paper: 93.3%)")
assert abs(cut_fp6 - 0.933) < 0.001

# %% [markdown]
# ## 3. ISCA'25 "Insights into DeepSeek-V3", Table 1: KV cache per token (BF16)

# %%
isca = {"deepseek-v3": 70.272, "qwen2.5-72b": 327.68, "llama-3.1-405b": 516.096}  # KB per token
for m in (v3, qwen72, llama405):
    ours = kv_bytes_per_token(m, BF16) / KB
    print(f"{m.name:16s} {ours:8.3f} KB/token   paper {isca[m.name]:8.3f}")
    assert abs(ours - isca[m.name]) < 1e-6

# %% [markdown]
# ## 4. The blog claim "MLA cuts the KV cache by over 90%"
# True against MHA with the same dimensions; against the GQA models people actually compare
# with, it is 79–86% in BF16, and over 90% only with a quantised cache.

# %%
v3_mha = replace(v3, kv_lora_rank=0, head_dim=v3.qk_nope_head_dim + v3.qk_rope_head_dim,
                 num_key_value_heads=v3.num_attention_heads)
for label, other in (("V3 as MHA, same heads", v3_mha), ("Llama-3.1-405B (GQA-8)", llama405),
                     ("Qwen2.5-72B (GQA-8)", qwen72)):
    cut = 1 - kv_bytes_per_token(v3, BF16) / kv_bytes_per_token(other, BF16)
    print(f"DeepSeek-V3 MLA vs {label:24s}: {cut:.1%} smaller")
assert 1 - kv_bytes_per_token(v3, BF16) / kv_bytes_per_token(v3_mha, BF16) > 0.9
assert 1 - kv_bytes_per_token(v3, BF16) / kv_bytes_per_token(llama405, BF16) < 0.9

# %% [markdown]
# ## 5. "671B parameters, 37B activated" (DeepSeek-V3 report)

# %%
pc = count_params(v3)
print(f"DeepSeek-V3: {pc.total / 1e9:.1f}B total, {pc.active / 1e9:.1f}B activated "
      f"({pc.active / pc.total:.1%} of the weights per token)")
assert abs(pc.total / 671e9 - 1) < 0.005 and abs(pc.active / 37e9 - 1) < 0.025
