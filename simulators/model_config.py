"""Model architectures: a frozen ModelConfig with DeepSeek / Hugging Face field names.

Loads our own YAML files (`simulators/model_configs/*.yaml`: provenance + an HF-style `config:`
block) and plain Hugging Face `config.json` files from a local path. Family-specific names
(Mixtral's `num_local_experts`, Qwen3-MoE's `num_experts`, ...) are mapped here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    tie_word_embeddings: bool = False
    weight_dtype: str = "bf16"  # checkpoint dtype of the weights
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
        """mla, mha, gqa or mqa."""
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
    def sparse_attention(self) -> bool:
        return self.index_topk > 0


def _int(cfg: dict, key: str, where: str, *, default: Any = None, minimum: int = 1) -> int:
    value = cfg.get(key, default)
    if value is None:
        if default is None:
            raise ConfigError(f"{where}: missing required field '{key}'")
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: field '{key}': expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}: field '{key}': expected an integer >= {minimum}, got {value}")
    return value


def _weight_dtype(cfg: dict, where: str) -> str:
    quant = cfg.get("quantization_config")
    if isinstance(quant, dict):
        fmt = str(quant.get("fmt", quant.get("quant_method", ""))).lower()
        if "fp8" in fmt or "e4m3" in fmt:
            return "fp8"
    raw = cfg.get("torch_dtype", cfg.get("dtype", "bf16"))
    return canonical_dtype(str(raw), f"{where}: field 'torch_dtype'")


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
        dense_only = set(cfg.get("mlp_only_layers") or [])
        return sum(1 for i in range(n_layers) if i not in dense_only and (i + 1) % step == 0)
    return n_layers  # Mixtral: every layer


def parse_hf_config(cfg: Any, where: str, name: str) -> dict[str, Any]:
    """Map a Hugging Face config dict to ModelConfig keyword arguments."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping of Hugging Face config fields")
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
            scoring_func=str(cfg.get("scoring_func", "softmax")),
            routed_scaling_factor=float(cfg.get("routed_scaling_factor") or 1.0),
            norm_topk_prob=bool(cfg.get("norm_topk_prob", False)),
            topk_method=str(cfg.get("topk_method") or ""),
            intermediate_size=dense_inter,
        )
    else:
        kw["intermediate_size"] = _int(cfg, "intermediate_size", where)

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
    tie = cfg.get("tie_word_embeddings", False)
    if not isinstance(tie, bool):
        raise ConfigError(f"{where}: field 'tie_word_embeddings': expected true or false, got {tie!r}")
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
    p = Path(name_or_path)
    if p.is_dir() and (p / "config.json").exists():
        p = p / "config.json"
    if p.suffix.lower() in (".yaml", ".yml", ".json") or p.exists():
        if not p.exists():
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
