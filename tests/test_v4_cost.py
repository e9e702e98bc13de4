"""V4 through the existing paths: simulate on every shipped profile, memory with its ledger
columns (and --tp), mHC and CSA costs against the reference's own figures, FP4-expert compute
dtype per device (issue 9 §2)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from daedalus.commands import memory as memory_cmd
from simulators.errors import ConfigError
from simulators.hardware import builtin_profiles, resolve_profile
from simulators.model_config import resolve_model
from simulators.model_cost import step_ops
from simulators.precision import Precision, expert_compute_dtype
from simulators.predict import memory_table, simulate

V4 = ("deepseek-v4-pro", "deepseek-v4-flash")


@pytest.fixture(scope="module")
def pro():
    return resolve_model("deepseek-v4-pro")


def test_simulate_every_profile_prefill_and_decode():
    models = [resolve_model(n) for n in V4]
    profiles = [resolve_profile(n) for n in builtin_profiles()]
    res = simulate(models, profiles, phases=("prefill", "decode"), batches=(1, 32), contexts=(4096, 1 << 20))
    assert len(res.totals) == 2 * len(profiles) * 2 * 2 * 2
    assert (res.totals["time_s"] > 0).all() and np.isfinite(res.totals["time_s"]).all()
    ops = set(res.ops["op"])
    assert {"csa_compressor", "indexer_scores", "csa_core", "hca_core", "mhc_mix", "moe_routed"} <= ops
    assert "swa_core" in set(res.ops[res.ops.model == "deepseek-v4-flash"]["op"])


@pytest.mark.parametrize("hw, expected", [
    ("b200", "fp8"),  # FP8 x FP4 MMA (Blackwell): the FP8 rate
    ("h100-sxm", "bf16"),  # Hopper: dequantised to BF16 (W4A16)
    ("ascend-910c", "int8"),  # neither FP8 nor FP4
])
def test_fp4_expert_compute_dtype_by_device(pro, hw, expected):
    assert expert_compute_dtype(Precision.for_model(pro), resolve_profile(hw)) == expected


def test_mhc_flops_match_the_reference_estimate(pro):
    # reference §1.7 (derived from S3 shapes): 2 x 24 x 28,672 = 1.38 MFLOP per sub-layer for the
    # mixing projection, 168 MFLOP over Pro's 122 sub-layers per token; our ops add the RMSNorm,
    # Sinkhorn and the pre/post mixes (each a few x 28,672 FLOP): within +40% of the projection.
    ops = step_ops(pro, 1.0, 1.0, 4096.0, Precision.for_model(pro))
    mhc = sum(float(o.flop * o.n_layers) for o in ops if o.family == "mhc")
    assert 168e6 <= mhc <= 1.4 * 168e6
    # "≈0.17% of the 97 GFLOP of GEMMs": well under 1% of the step at short context
    total = sum(float(o.flop * o.n_layers) for o in ops)
    assert mhc / total < 0.01


def test_csa_decode_core_reads_top_k_plus_window(pro):
    # report §2.3: a CSA query attends its top-k (1024) compressed entries + the 128-token window;
    # 2 FLOP per multiply-add, QK and PV each over the 512-value shared K=V vector, 128 heads.
    ops = step_ops(pro, 1.0, 1.0, float(1 << 20), Precision.for_model(pro))
    core = [o for o in ops if o.op == "csa_core"][0]
    assert core.n_layers == 30
    assert float(core.flop) == pytest.approx(2 * 2 * 128 * 512 * (1024 + 128), rel=1e-3)
    hca = [o for o in ops if o.op == "hca_core"][0]  # dense: all L / 128 entries + the window
    assert float(hca.flop) == pytest.approx(2 * 2 * 128 * 512 * ((1 << 20) / 128 + 128), rel=1e-3)


def test_memory_table_ledger_columns_and_tp():
    models = [resolve_model(n) for n in ("deepseek-v4-flash", "deepseek-v3")]
    df = memory_table(models, contexts=(65536,), batches=(16,), profiles=[resolve_profile("b200")],
                      devices=8, tp=2)
    for c in ("kv_main_bytes", "kv_indexer_bytes", "kv_window_bytes", "kv_state_bytes", "kv_mtp_bytes",
              "kv_per_device_bytes"):
        assert c in df
    parts = df[["kv_main_bytes", "kv_indexer_bytes", "kv_window_bytes", "kv_state_bytes"]].sum(axis=1)
    assert np.allclose(parts, df["kv_bytes"])
    # TP replicates these single-head caches; dp = 8 / 2 = 4 groups split the 16 sequences
    assert np.allclose(df["kv_per_device_bytes"], df["kv_bytes"] / 4)
    # the B200 profile has an FP4 peak, so V4's indexer keys take the FP4 layout there
    assert df[df.model == "deepseek-v4-flash"]["indexer_dtype"].item() == "fp4"
    with pytest.raises(ConfigError, match="^tp: "):  # the core names the field; the CLI names the flag
        memory_table(models, devices=8, tp=3)


def _memory_cli(argv):
    parser = argparse.ArgumentParser()
    memory_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["memory", *argv])
    return args.func(args)


def test_memory_command_accepts_tp(capsys):
    assert _memory_cli(["--model", "deepseek-v4-pro", "--context", "1m", "--kv-dtype", "fp8", "--devices", "8",
                        "--tp", "8", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "kv_per_device_bytes" in out.splitlines()[0] and "deepseek-v4-pro" in out
    with pytest.raises(ConfigError, match="--tp: expected a positive divisor"):
        _memory_cli(["--model", "deepseek-v4-pro", "--devices", "4", "--tp", "3"])
