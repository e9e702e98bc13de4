"""Model architectures: a frozen ModelConfig with DeepSeek / Hugging Face field names.

Loads our own YAML files (`simulators/model_configs/*.yaml`: provenance + an HF-style `config:`
block) and plain Hugging Face `config.json` files from a local path. Family-specific names
(Mixtral's `num_local_experts`, Qwen3-MoE's `num_experts`, ...) are mapped here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import boolean, int_list, integer, positive_number, text
from .errors import ConfigError
from .hardware import read_yaml
from .provenance import Sourced, parse_sourced
from .units import canonical_dtype

CONFIG_DIR = Path(__file__).parent / "model_configs"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int  # dense FFN width (dense layers)
    # Mixture of experts (n_routed_experts == 0: dense model)
    n_routed_experts: int = 0
    n_shared_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0  # total width of the shared expert(s)
    n_moe_layers: int = 0
    n_group: int = 1
    topk_group: int = 1
    # Router (only the benchmark's reference MoE kernel uses these; they cost nothing in the model)
    scoring_func: str = "softmax"
    routed_scaling_factor: float = 1.0
    norm_topk_prob: bool = False
    topk_method: str = ""
    # Multi-head latent attention (kv_lora_rank == 0: not MLA)
    q_lora_rank: int = 0  # 0: queries projected directly (V2-Lite)
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # DeepSeek sparse attention (V3.2-Exp): lightning indexer + top-k tokens (0: dense attention)
    index_n_heads: int = 0
    index_head_dim: int = 0
    index_topk: int = 0
    # DeepSeek-V4 compressed attention (compress_ratios empty: not V4). One entry per layer,
    # main layers first, then the MTP layer(s): 0 = sliding window only, 4 = CSA, 128 = HCA.
    compress_ratios: tuple[int, ...] = ()
    layer_kinds: tuple[str, ...] = ()  # attention kind per main layer (empty: every layer `attention`)
    mtp_layer_kinds: tuple[str, ...] = ()  # attention kind of each MTP layer (V4 only)
    sliding_window: int = 0  # n_win: uncompressed recent tokens every V4 layer attends to
    o_groups: int = 0  # grouped output projection: g groups of heads ...
    o_lora_rank: int = 0  # ... each projected to d_g before the final projection to d
    hc_mult: int = 0  # mHC: residual stream widened to hc_mult x d (0: a plain residual)
    hc_sinkhorn_iters: int = 0
    num_hash_layers: int = 0  # the first N MoE layers route by token id (a table), not by the router
    num_nextn_predict_layers: int = 0  # MTP layers, counted apart from the main layers
    tie_word_embeddings: bool = False
    weight_dtype: str = "bf16"  # checkpoint dtype of the (quantised) linear layers
    expert_dtype: str = ""  # routed-expert dtype when it differs (V4: fp4 = MXFP4)
    unquantized_dtype: str = ""  # torch_dtype of what quantization leaves alone (embedding, head, router)
    weight_scale_bytes: float = 0.0  # one FP8 block scale: 4 (fp32) or 1 (scale_fmt ue8m0)
    display_name: str = ""
    source: str = ""
    status: str = ""
    note: str = ""
    aliases: tuple[str, ...] = ()
    path: str = ""
    published: dict[str, Sourced] = field(default_factory=dict, compare=False)
    field_sources: dict[str, dict] = field(default_factory=dict, compare=False)

    @property
    def attention(self) -> str:
        """csa_hca (DeepSeek-V4), mla, mha, gqa or mqa."""
        if self.compress_ratios:
            return "csa_hca"
        if self.kv_lora_rank > 0:
            return "mla"
        if self.num_key_value_heads == self.num_attention_heads:
            return "mha"
        if self.num_key_value_heads == 1:
            return "mqa"
        return "gqa"

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0 and self.n_moe_layers > 0

    @property
    def n_dense_layers(self) -> int:
        return self.num_hidden_layers - self.n_moe_layers

    @property
    def moe_routing_layers(self) -> dict[str, int]:
        """MoE layers per routing kind: 'hash' (the first num_hash_layers: experts by token id) and
        'router' (the learned router); from the config's num_hash_layers."""
        if not self.is_moe:
            return {}
        return {"router": self.n_moe_layers - self.num_hash_layers, "hash": self.num_hash_layers}

    @property
    def sparse_attention(self) -> bool:
        return self.index_topk > 0

    @property
    def kinds(self) -> tuple[str, ...]:
        """Attention kind of every main layer (data, not code per model)."""
        return self.layer_kinds or (self.attention,) * self.num_hidden_layers

    def layers_of_kind(self, kind: str) -> int:
        return sum(1 for k in self.kinds if k == kind)


MAX_DIM = 2**31 - 1  # any width / count; products of a few stay exact in int64 and finite in float
MAX_LAYERS = 100_000  # one entry per layer is kept (kinds); no model has more than a few hundred


def _int(cfg: dict, key: str, where: str, *, default: Any = None, minimum: int = 1) -> int:
    value = cfg.get(key, default)
    if value is None:
        if default is None:
            raise ConfigError(f"{where}: missing required field '{key}'")
        value = default
    if isinstance(value, float):  # 4096.0 is a whole number only by accident of a writer: refuse floats
        raise ConfigError(f"{where}: field '{key}': expected an integer, got {value!r}")
    top = MAX_LAYERS if key.endswith("layers") else MAX_DIM
    return integer(value, f"{where}: field '{key}'", minimum, top)


def _weight_dtype(cfg: dict, where: str) -> str:
    quant = cfg.get("quantization_config")
    if isinstance(quant, dict):
        fmt = str(quant.get("fmt", quant.get("quant_method", ""))).lower()
        if "fp8" in fmt or "e4m3" in fmt:
            return "fp8"
    return _torch_dtype(cfg, where)


def _torch_dtype(cfg: dict, where: str) -> str:
    raw = cfg.get("torch_dtype", cfg.get("dtype", "bf16"))
    return canonical_dtype(str(raw), f"{where}: field 'torch_dtype'")


def _scale_bytes(cfg: dict) -> float:
    """Bytes of one FP8 weight block scale: UE8M0 (1 B) when quantization_config says so, else
    FP32 (4 B, DeepSeek-V3's weight_scale_inv)."""
    quant = cfg.get("quantization_config")
    if not isinstance(quant, dict):
        return 0.0
    return 1.0 if str(quant.get("scale_fmt", "")).lower() == "ue8m0" else 4.0


# Hugging Face config fields that change no cost Daedalus models (token ids, training knobs,
# positional-encoding details, bookkeeping). Any field neither here nor parsed is refused by name.
_IGNORED_HF_FIELDS = {
    "_name_or_path", "architectures", "model_type", "auto_map", "transformers_version", "torch_dtype", "dtype",
    "bos_token_id", "eos_token_id", "pad_token_id", "use_cache", "initializer_range", "rms_norm_eps",
    "layer_norm_eps", "hidden_act", "attention_bias", "attention_dropout", "mlp_bias", "pretraining_tp",
    "max_position_embeddings", "rope_theta", "rope_scaling", "rope_interleave", "compress_rope_theta",
    "aux_loss_alpha", "seq_aux", "ep_size", "output_router_logits", "router_aux_loss_coef",
    "router_jitter_noise", "swiglu_limit", "hc_eps", "max_window_layers", "quantization_config",
    "id2label", "label2id", "tokenizer_class", "return_dict", "output_attentions", "output_hidden_states",
    "torchscript", "problem_type", "task_specific_params", "is_decoder", "is_encoder_decoder",
    "chunk_size_feed_forward", "attn_implementation", "_attn_implementation",
}
_PARSED_HF_FIELDS = {
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "n_routed_experts", "num_local_experts", "num_experts", "num_experts_per_tok",
    "moe_intermediate_size", "n_shared_experts", "shared_expert_intermediate_size", "first_k_dense_replace",
    "moe_layer_freq", "decoder_sparse_step", "mlp_only_layers", "n_group", "topk_group", "scoring_func",
    "routed_scaling_factor", "norm_topk_prob", "topk_method", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
    "qk_rope_head_dim", "v_head_dim", "index_n_heads", "index_head_dim", "index_topk", "tie_word_embeddings",
    "compress_ratios", "sliding_window", "use_sliding_window", "o_groups", "o_lora_rank", "hc_mult",
    "hc_sinkhorn_iters", "num_hash_layers", "expert_dtype", "num_nextn_predict_layers",
}

CSA_RATIO = 4  # the overlapped, indexed compression (DeepSeek-V4 inference: `overlap = compress_ratio == 4`)


def _check_fields(cfg: dict, where: str) -> None:
    unknown = sorted(k for k in cfg if k not in _IGNORED_HF_FIELDS and k not in _PARSED_HF_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: field(s) {', '.join(repr(k) for k in unknown)} not understood by the loader "
                          "(an architecture feature Daedalus does not model would be silently ignored)")


def _v4_attention(cfg: dict, n_layers: int, n_mtp: int, where: str) -> dict[str, Any]:
    """DeepSeek-V4 compressed attention: per-layer kinds from compress_ratios."""
    ratios = cfg["compress_ratios"]
    if not isinstance(ratios, list) or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0
                                               for r in ratios):
        raise ConfigError(f"{where}: field 'compress_ratios': expected a list of integers >= 0")
    if len(ratios) not in (n_layers, n_layers + n_mtp):
        raise ConfigError(f"{where}: field 'compress_ratios': {len(ratios)} entries, expected num_hidden_layers "
                          f"{n_layers} (+ num_nextn_predict_layers {n_mtp})")
    if any(r == 1 for r in ratios):
        raise ConfigError(f"{where}: field 'compress_ratios': ratio 1 (uncompressed) is not a V4 layer kind")
    index_topk = _int(cfg, "index_topk", where, default=0, minimum=0)
    if CSA_RATIO in ratios and not index_topk:
        raise ConfigError(f"{where}: field 'index_topk': CSA layers (ratio {CSA_RATIO}) need an indexer top-k")

    def kind(r: int) -> str:
        return "swa" if r == 0 else ("csa" if r == CSA_RATIO else "hca")

    kinds = tuple(kind(r) for r in ratios)
    n_heads = _int(cfg, "num_attention_heads", where)
    groups = _int(cfg, "o_groups", where)
    if n_heads % groups:
        raise ConfigError(f"{where}: field 'o_groups': {groups} does not divide num_attention_heads {n_heads}")
    kw: dict[str, Any] = dict(
        compress_ratios=tuple(ratios),
        layer_kinds=kinds[:n_layers],
        mtp_layer_kinds=kinds[n_layers:] if len(ratios) > n_layers else ("swa",) * n_mtp,
        sliding_window=_int(cfg, "sliding_window", where),
        o_groups=groups,
        o_lora_rank=_int(cfg, "o_lora_rank", where),
        q_lora_rank=_int(cfg, "q_lora_rank", where),
        qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", where),
        hc_mult=_int(cfg, "hc_mult", where, default=0, minimum=0),
        hc_sinkhorn_iters=_int(cfg, "hc_sinkhorn_iters", where, default=0, minimum=0),
    )
    if index_topk:
        kw.update(index_topk=index_topk, index_n_heads=_int(cfg, "index_n_heads", where),
                  index_head_dim=_int(cfg, "index_head_dim", where))
    return kw


def _moe_layers(cfg: dict, n_layers: int, n_experts: int, where: str) -> int:
    """Count MoE layers with each family's rule."""
    if n_experts == 0:
        return 0
    if "first_k_dense_replace" in cfg or "moe_layer_freq" in cfg:  # DeepSeek / Kimi
        first_dense = _int(cfg, "first_k_dense_replace", where, default=0, minimum=0)
        freq = _int(cfg, "moe_layer_freq", where, default=1)
        return sum(1 for i in range(n_layers) if i >= first_dense and i % freq == 0)
    if "decoder_sparse_step" in cfg or "mlp_only_layers" in cfg:  # Qwen2/3-MoE
        step = _int(cfg, "decoder_sparse_step", where, default=1)
        dense_only = set(int_list(cfg.get("mlp_only_layers") or [], f"{where}: field 'mlp_only_layers'", 0))
        return sum(1 for i in range(n_layers) if i not in dense_only and (i + 1) % step == 0)
    return n_layers  # Mixtral: every layer


def parse_hf_config(cfg: Any, where: str, name: str) -> dict[str, Any]:
    """Map a Hugging Face config dict to ModelConfig keyword arguments."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping of Hugging Face config fields")
    _check_fields(cfg, where)
    hidden = _int(cfg, "hidden_size", where)
    n_layers = _int(cfg, "num_hidden_layers", where)
    n_heads = _int(cfg, "num_attention_heads", where)
    n_kv = _int(cfg, "num_key_value_heads", where, default=n_heads)
    if n_heads % n_kv:
        raise ConfigError(f"{where}: field 'num_key_value_heads': {n_kv} does not divide num_attention_heads {n_heads}")
    head_dim = _int(cfg, "head_dim", where, default=hidden // n_heads)
    vocab = _int(cfg, "vocab_size", where)

    n_experts = _int(cfg, "n_routed_experts", where, default=0, minimum=0)
    n_experts = n_experts or _int(cfg, "num_local_experts", where, default=0, minimum=0)  # Mixtral
    n_experts = n_experts or _int(cfg, "num_experts", where, default=0, minimum=0)  # Qwen-MoE
    kw: dict[str, Any] = {}
    if n_experts:
        top_k = _int(cfg, "num_experts_per_tok", where)
        if top_k > n_experts:
            raise ConfigError(f"{where}: field 'num_experts_per_tok': {top_k} exceeds the {n_experts} routed experts")
        moe_inter = cfg.get("moe_intermediate_size")
        if moe_inter is None:  # Mixtral: experts are full-width FFNs
            moe_inter = _int(cfg, "intermediate_size", where)
        moe_inter = _int({"moe_intermediate_size": moe_inter}, "moe_intermediate_size", where)
        n_shared = _int(cfg, "n_shared_experts", where, default=0, minimum=0)
        shared_inter = _int(cfg, "shared_expert_intermediate_size", where, default=n_shared * moe_inter, minimum=0)
        n_moe = _moe_layers(cfg, n_layers, n_experts, where)
        # Width of the dense FFN in non-MoE layers (Qwen3 lists one even though no layer uses it).
        dense_inter = _int(cfg, "intermediate_size", where, default=moe_inter)
        kw.update(
            n_routed_experts=n_experts,
            n_shared_experts=n_shared,
            num_experts_per_tok=top_k,
            moe_intermediate_size=moe_inter,
            shared_expert_intermediate_size=shared_inter,
            n_moe_layers=n_moe,
            n_group=_int(cfg, "n_group", where, default=1),
            topk_group=_int(cfg, "topk_group", where, default=1),
            scoring_func=text(cfg.get("scoring_func"), f"{where}: field 'scoring_func'", "softmax"),
            routed_scaling_factor=positive_number(cfg.get("routed_scaling_factor") or 1.0,
                                                  f"{where}: field 'routed_scaling_factor'"),
            norm_topk_prob=boolean(cfg.get("norm_topk_prob", False), f"{where}: field 'norm_topk_prob'"),
            topk_method=text(cfg.get("topk_method"), f"{where}: field 'topk_method'", ""),
            intermediate_size=dense_inter,
        )
    else:
        kw["intermediate_size"] = _int(cfg, "intermediate_size", where)

    n_mtp = _int(cfg, "num_nextn_predict_layers", where, default=0, minimum=0)
    kw["num_nextn_predict_layers"] = n_mtp
    kw["num_hash_layers"] = _int(cfg, "num_hash_layers", where, default=0, minimum=0)
    if kw["num_hash_layers"] > kw.get("n_moe_layers", 0):
        raise ConfigError(f"{where}: field 'num_hash_layers': {kw['num_hash_layers']} exceeds the "
                          f"{kw.get('n_moe_layers', 0)} MoE layers")
    if cfg.get("expert_dtype") is not None:
        kw["expert_dtype"] = canonical_dtype(str(cfg["expert_dtype"]), f"{where}: field 'expert_dtype'")
    if cfg.get("compress_ratios") is not None:
        kw.update(_v4_attention(cfg, n_layers, n_mtp, where))
    elif cfg.get("sliding_window") is not None and cfg.get("use_sliding_window", True) is not False:
        raise ConfigError(f"{where}: field 'sliding_window': sliding-window attention without compress_ratios "
                          "is not modelled (set use_sliding_window: false if it is unused)")
    kv_lora = _int(cfg, "kv_lora_rank", where, default=0, minimum=0)
    if kv_lora:
        kw.update(
            kv_lora_rank=kv_lora,
            q_lora_rank=_int(cfg, "q_lora_rank", where, default=0, minimum=0),
            qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", where),
            qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", where),
            v_head_dim=_int(cfg, "v_head_dim", where),
        )
        if cfg.get("index_topk"):
            kw.update(
                index_topk=_int(cfg, "index_topk", where),
                index_n_heads=_int(cfg, "index_n_heads", where),
                index_head_dim=_int(cfg, "index_head_dim", where),
            )
    tie = boolean(cfg.get("tie_word_embeddings", False), f"{where}: field 'tie_word_embeddings'")
    return dict(
        name=name,
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv,
        head_dim=head_dim,
        tie_word_embeddings=tie,
        weight_dtype=_weight_dtype(cfg, where),
        unquantized_dtype=_torch_dtype(cfg, where) if isinstance(cfg.get("quantization_config"), dict) else "",
        weight_scale_bytes=_scale_bytes(cfg),
        **kw,
    )


_TOP_KEYS = {"name", "aliases", "display_name", "source", "status", "note", "field_sources", "published", "config"}


def parse_model(doc: Any, path: str) -> ModelConfig:
    """Our model file (with `config:`) or a bare Hugging Face config.json document."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a YAML/JSON mapping at top level")
    if "config" not in doc:  # a Hugging Face config.json
        p = Path(path)
        name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
        name = str(doc.get("_name_or_path") or name).rstrip("/").split("/")[-1].lower()
        kw = parse_hf_config(doc, path, name)
        source = f"Hugging Face config file {path}"
        return ModelConfig(**kw, display_name=name, source=source, status="datasheet", path=path)
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("name", "source", "status"):
        if not doc.get(key):
            raise ConfigError(f"{path}: missing required field '{key}'")
    kw = parse_hf_config(doc["config"], f"{path}: config", str(doc["name"]))
    published = {
        k: parse_sourced(v, f"{path}: field 'published.{k}'") for k, v in (doc.get("published") or {}).items()
    }
    aliases = doc.get("aliases") or []
    if not isinstance(aliases, list):
        raise ConfigError(f"{path}: field 'aliases': expected a list of strings")
    return ModelConfig(
        **kw,
        display_name=str(doc.get("display_name", doc["name"])),
        source=str(doc["source"]),
        status=str(doc["status"]),
        note=str(doc.get("note") or ""),
        aliases=tuple(str(a).lower() for a in aliases),
        path=path,
        published=published,
        field_sources=dict(doc.get("field_sources") or {}),
    )


def load_model(path: str | Path) -> ModelConfig:
    path = Path(path)
    return parse_model(read_yaml(path), str(path))


def builtin_models() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def resolve_model(name_or_path: str) -> ModelConfig:
    """A shipped model name (or alias), or a path to a model YAML/JSON or HF config.json."""
    from .safe_load import exists

    p = Path(name_or_path)
    if exists(p / "config.json") and p.is_dir():
        p = p / "config.json"
    if p.suffix.lower() in (".yaml", ".yml", ".json") or exists(p):
        if not exists(p):
            raise ConfigError(f"{name_or_path}: model file not found")
        return load_model(p)
    key = name_or_path.strip().lower()
    files = builtin_models()
    if key in files:
        return load_model(files[key])
    for path in files.values():
        model = load_model(path)
        if key in model.aliases:
            return model
    raise ConfigError(f"unknown model {name_or_path!r}; valid names: {', '.join(files)}")
