"""Shared fixtures: tiny model configs for fast property tests, and the shipped ones."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from simulators.hardware import builtin_profiles, load_profile
from simulators.model_config import ModelConfig, builtin_models, load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shipped_models() -> dict[str, ModelConfig]:
    return {name: load_model(p) for name, p in builtin_models().items()}


@pytest.fixture(scope="session")
def shipped_profiles():
    return {name: load_profile(p) for name, p in builtin_profiles().items()}


def tiny_model(attention: str = "gqa", **overrides) -> ModelConfig:
    """A small dense or MoE config with one attention kind; dims overridable."""
    base = dict(name=f"tiny-{attention}", vocab_size=1000, hidden_size=256, num_hidden_layers=4,
                num_attention_heads=8, num_key_value_heads=8, head_dim=32, intermediate_size=512)
    if attention == "gqa":
        base["num_key_value_heads"] = 4
    elif attention == "mqa":
        base["num_key_value_heads"] = 1
    elif attention == "mla":
        base.update(kv_lora_rank=128, qk_rope_head_dim=16, qk_nope_head_dim=32, v_head_dim=32, q_lora_rank=64)
    base.update(overrides)
    return ModelConfig(**base)


@pytest.fixture(scope="session")
def pro() -> ModelConfig:
    """DeepSeek-V4-Pro as shipped."""
    from simulators.model_config import resolve_model

    return resolve_model("deepseek-v4-pro")


@pytest.fixture(scope="session")
def flash() -> ModelConfig:
    """DeepSeek-V4-Flash as shipped."""
    from simulators.model_config import resolve_model

    return resolve_model("deepseek-v4-flash")


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount_tmpfs(options) -> a fresh tmpfs mounted with `options` ("size=64k", "ro,size=64k") under
    tmp_path; needs root and mount permission (the test is skipped otherwise); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        mnt = tmp_path / f"tmpfs{len(mounted)}"
        mnt.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                                               capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        for _ in range(20):
            if subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
