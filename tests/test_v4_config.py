"""DeepSeek-V4 configs: the layer schedule, the loader (HF config.json = shipped YAML; unknown
architecture fields refused by name), parameter counts and checkpoint bytes against published
figures. Sources: shared/reference/deepseek-v4.md (S1 report, S2 config.json copies, S3 tensors)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from simulators.errors import ConfigError
from simulators.memory import weight_bytes, weight_bytes_by_part
from simulators.model_config import load_model, parse_model, resolve_model
from simulators.params import count_params
from simulators.precision import Precision
from simulators.units import GiB

DATA = Path(__file__).parent / "data"



def test_layer_schedule_matches_the_report(pro, flash):
    # Report §4.2.1 (S1): Pro "first two layers HCA", Flash "first two layers pure SWA", then
    # "CSA and HCA interleaved"; counts from the reference's schedule table (30/31; 21/20/2).
    assert pro.kinds[:2] == ("hca", "hca") and flash.kinds[:2] == ("swa", "swa")
    for m in (pro, flash):
        assert all(k == ("csa" if i % 2 == 0 else "hca") for i, k in enumerate(m.kinds) if i >= 2)
        assert m.mtp_layer_kinds == ("swa",)  # final compress_ratios entry 0; no mtp.0 compressor (S3)
    assert (pro.layers_of_kind("csa"), pro.layers_of_kind("hca"), pro.layers_of_kind("swa")) == (30, 31, 0)
    assert (flash.layers_of_kind("csa"), flash.layers_of_kind("hca"), flash.layers_of_kind("swa")) == (21, 20, 2)
    assert pro.n_moe_layers == 61 and pro.n_dense_layers == 0  # every layer MoE (§4.2.1)
    assert pro.num_hash_layers == 3 and pro.attention == "csa_hca"


@pytest.mark.parametrize("name", ["pro", "flash"])
def test_hf_config_json_loads_to_the_shipped_yaml(name):
    yaml_model = resolve_model(f"deepseek-v4-{name}")
    json_model = load_model(DATA / f"deepseek-v4-{name}_config.json")
    provenance = {"name", "display_name", "source", "status", "note", "aliases", "path", "published",
                  "field_sources"}
    for f in dataclasses.fields(yaml_model):
        if f.name not in provenance:
            assert getattr(json_model, f.name) == getattr(yaml_model, f.name), f.name


@pytest.mark.parametrize("field, value", [
    ("dspark_block_size", 5),  # DeepSeek-V4-Flash-0731 (reference §1.2, later checkpoints)
    ("kv_source_layers", [0, 1]),  # DeepSeek-V4.1-Flash KV sharing
    ("engram_layer_ids", [3]),
])
def test_unknown_architecture_field_is_refused_by_name(field, value):
    cfg = json.loads((DATA / "deepseek-v4-flash_config.json").read_text())
    cfg[field] = value
    with pytest.raises(ConfigError, match=field):
        parse_model(cfg, "x/config.json")


def test_bad_v4_fields_are_one_line_errors():
    cfg = json.loads((DATA / "deepseek-v4-flash_config.json").read_text())
    with pytest.raises(ConfigError, match="compress_ratios"):
        parse_model({**cfg, "compress_ratios": cfg["compress_ratios"][:-2]}, "x/config.json")
    with pytest.raises(ConfigError, match="o_groups"):
        parse_model({**cfg, "o_groups": 7}, "x/config.json")
    gqa = {"hidden_size": 512, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
           "vocab_size": 1000, "intermediate_size": 1024, "sliding_window": 4096}
    with pytest.raises(ConfigError, match="sliding_window"):  # Mistral-style SWA is not modelled
        parse_model(gqa, "y/config.json")
    assert parse_model({**gqa, "use_sliding_window": False}, "y/config.json").attention == "gqa"


def test_parameter_counts_against_the_report(pro, flash):
    # Report §4.2.1 (S1): 1.6T total / 49B activated (Pro), 284B / 13B (Flash), given to the
    # digits shown; tolerance = half a unit of the last digit. Convention: main layers only (the
    # MTP layer apart, as V3's 671B); the activated count leaves out the input embedding (a table
    # lookup, no compute). With it Pro is 49.78B and Flash 13.80B: 50B / 14B when rounded, so the
    # report must count without it (V3's README counts 37B with it, 36.6B without: both round to 37).
    pc_pro, pc_flash = count_params(pro), count_params(flash)
    assert abs(pc_pro.total - 1.6e12) <= 0.05e12
    assert abs(pc_pro.active - pc_pro.embedding - 49e9) <= 0.5e9
    assert abs(pc_flash.total - 284e9) <= 0.5e9
    assert abs(pc_flash.active - pc_flash.embedding - 13e9) <= 0.5e9
    # reference §1.3: routed experts 61 x 384 x 66.06M = 1547B (derived from the S3 shapes)
    assert pc_pro.moe_routed == pytest.approx(1547e9, rel=5e-4)


def test_mxfp4_expert_bytes_match_the_tensor_listing(pro):
    # S3: the routed experts take 240.19 GiB x 3 (w1/w2/w3) + 15.01 GiB x 3 of E8M0 scales
    # (listing figures, rounded to 0.01 GiB: tolerance 1e-4 relative).
    listed = 3 * (240.19 + 15.01) * GiB
    assert weight_bytes_by_part(pro, Precision.for_model(pro))["experts"] == pytest.approx(listed, rel=1e-4)


def test_checkpoint_bytes_are_main_layers_plus_the_mtp_layer(pro):
    # S3: 805.33 GiB on disk = main layers + embedding/head + the MTP layer (one SWA-only layer
    # with 384 FP4 experts, plus e_proj and h_proj [7168, 7168] FP8). Tolerance 0.1%: norms,
    # the MTP layer's own norms/head-mix and safetensors headers are not counted.
    p = Precision.for_model(pro)
    one_layer = dataclasses.replace(pro, num_hidden_layers=1, layer_kinds=("swa",), n_moe_layers=1,
                                    num_hash_layers=0)
    parts = weight_bytes_by_part(one_layer, p)
    pc1 = count_params(one_layer)
    mtp_bytes = sum(parts.values()) - (pc1.embedding + pc1.lm_head) * p.keep_w_bytes
    mtp_bytes += 2 * pro.hidden_size**2 * p.w_bytes  # e_proj, h_proj
    assert weight_bytes(pro, p) + mtp_bytes == pytest.approx(805.33 * GiB, rel=1e-3)  # 805.31 GiB here


def test_v3_keeps_its_bf16_head_and_router():
    # The FP8 checkpoints keep embedding, LM head and router in torch_dtype BF16 (V4: S3 dtypes;
    # V3 the same convention, issue 9 §2): each byte-counted at 2 B, not 1.
    v3 = resolve_model("deepseek-v3")
    p = Precision.for_model(v3)
    assert p.keep_w_bytes == 2.0 and p.weight == "fp8"
    pc = count_params(v3)
    assert weight_bytes_by_part(v3, p)["unquantized"] == (pc.embedding + pc.lm_head + pc.moe_router) * 2.0
    # a --weight-dtype override stores everything in that one dtype
    assert Precision.for_model(v3, "bf16").keep_w_bytes == Precision.for_model(v3, "bf16").w_bytes == 2.0
