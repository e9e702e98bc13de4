"""Figures on demand, without a benchmark run: what `daedalus figures`, `memory --plot` and
`plan --plot` draw. Each figure kind is simulated from the chosen models and hardware (the
measured kinds read an existing run folder) and saved as PNG or SVG.

    kv-memory            KV cache vs context per model, device capacities; same-dims MHA/GQA/MQA/MLA panel
    roofline             one per hardware: every op of every model at its arithmetic intensity
    op-breakdown         per-op time of one decode and one prefill step (first model, first hardware)
    hardware-comparison  decode time per token and tokens/s per device across hardware (first model)
    pareto               the planner's decode Pareto front per hardware, chosen deployment, TPOT target
    pred-vs-measured     a run's validation cases (needs a run)
    expert-load          a run's MoE routing counts (needs a run)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from daedalus.safety import file_stem, new_folder
from simulators.errors import ConfigError
from simulators.hardware import HardwareProfile, resolve_profile
from simulators.model_config import ModelConfig
from simulators.units import GB

SIM_KINDS = ("kv-memory", "roofline", "op-breakdown", "hardware-comparison", "pareto")
RUN_KINDS = ("pred-vs-measured", "expert-load")
KINDS = SIM_KINDS + RUN_KINDS
IMAGE_FORMATS = ("png", "svg")
CAPACITY_HARDWARE = ("h100-sxm", "h200", "b200", "mi300x")  # capacity lines when no hardware is named
PLAN_INPUT_LEN, PLAN_OUTPUT_LEN = 4096, 1024  # the pareto kind's workload (tokens per request)


def capacities(profiles: Sequence[HardwareProfile]) -> dict[str, float]:
    """Device memory lines of the KV figure: label -> bytes (host CPUs left out)."""
    return {f"{h.name} {h.memory_bytes.value / GB:.0f} GB": h.memory_bytes.value for h in profiles
            if h.vendor != "host"}


def kv_memory_frames(models: Sequence[ModelConfig], *, dtypes=None, contexts=None, batch: int = 1,
                     same_dims: bool = True):
    """(memory table over `contexts`, same-dims table of the first MLA model or None)."""
    from simulators.predict import Dtypes, memory_table
    from simulators.variants import same_dims_variants

    from .frames import MEMORY_CONTEXTS

    dtypes = dtypes or Dtypes()
    contexts = tuple(contexts or MEMORY_CONTEXTS)
    mem = memory_table(list(models), batches=(batch,), contexts=contexts, dtypes=dtypes)
    base = next((m for m in models if m.attention == "mla"), None) if same_dims else None
    sd = memory_table([base, *same_dims_variants(base)], batches=(batch,), contexts=contexts,
                      dtypes=dtypes) if base else None
    return mem, sd


def memory_figure(models: Sequence[ModelConfig], path: str | Path, *,
                  profiles: Sequence[HardwareProfile] | None = None, dtypes=None, contexts=None, batch: int = 1,
                  same_dims: bool = True, flag: str = "--plot") -> Path:
    """KV cache vs context (1k..1M tokens unless `contexts`) of `models` into one PNG / SVG file
    (by extension). Capacity lines: `profiles`, or CAPACITY_HARDWARE when None; a second panel
    puts the first MLA model's dimensions under MHA / GQA-8 / MQA unless `same_dims` is False."""
    from .plot_style import save_one
    from .plots_sim import kv_memory_figure

    if not models:
        raise ConfigError(f"{flag}: no model to plot")
    profiles = [resolve_profile(h) for h in CAPACITY_HARDWARE] if profiles is None else list(profiles)
    mem, sd = kv_memory_frames(models, dtypes=dtypes, contexts=contexts, batch=batch, same_dims=same_dims)
    return save_one(kv_memory_figure(mem, capacities(profiles), same_dims_df=sd, batch=batch), path, flag)


def plan_figure(result, path: str | Path, *, title: str = "", tpot_target_s: float | None = None,
                flag: str = "--plot") -> Path:
    """The Pareto figure of a `simulators.plan.plan` result (its `.pareto` and `.table`) into one
    PNG / SVG file (by extension); `tpot_target_s` draws the workload's TPOT target."""
    from .plots_plan import write_pareto

    return write_pareto(result.pareto, path, chosen=result.table, title=title, tpot_target_s=tpot_target_s,
                        flag=flag)


def _plan_result(model: ModelConfig, profiles: Sequence[HardwareProfile], tpot_s: float | None):
    from simulators.plan import PlanOptions, Workload, plan

    wl = Workload(input_len=PLAN_INPUT_LEN, output_len=PLAN_OUTPUT_LEN, tpot_s=tpot_s)
    return plan(model, list(profiles), wl, PlanOptions())


def draw(kinds: Sequence[str], models: Sequence[ModelConfig], profiles: Sequence[HardwareProfile],
         out_dir: str | Path, image_formats: Sequence[str] = ("png",), *, run_dir: Path | None = None,
         tpot_s: float | None = None, dpi: int | None = None) -> list[Path]:
    """Draw `kinds` for `models` on `profiles` into `out_dir` (<kind>.png / .svg; roofline_<hw>);
    the measured kinds read `run_dir`; `dpi` sets the PNG resolution. Returns the files written."""
    from . import plots_measured as pm
    from . import plots_sim as ps
    from .frames import simulate_frames
    from .plot_style import save_one

    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(f"--kind: unknown figure kind {unknown[0]!r} (expected one of: {', '.join(KINDS)})")
    if not models or not profiles:
        raise ConfigError("--model / --hardware: expected at least one model and one hardware profile")
    out = Path(out_dir)
    figures = []  # (name, Figure)
    sim = simulate_frames(None, models, profiles, models[0], profiles[0]) \
        if set(kinds) & {"roofline", "op-breakdown", "hardware-comparison"} else None
    inputs = None
    if set(kinds) & set(RUN_KINDS):
        if run_dir is None:
            need = ", ".join(k for k in kinds if k in RUN_KINDS)
            raise ConfigError(f"--kind {need}: needs a benchmark run (--run-id RUN_ID, --results DIR)")
        from .report_data import load_run

        inputs = load_run(run_dir)
    for kind in kinds:
        if kind == "kv-memory":
            mem, sd = kv_memory_frames(models)
            figures.append(("kv_memory", ps.kv_memory_figure(mem, capacities(profiles), same_dims_df=sd)))
        elif kind == "roofline":
            measured = inputs.measured if inputs is not None and inputs.host_profile is not None else None
            for hw in profiles:
                meas = measured if measured is not None and hw.vendor == "host" else None
                figures.append((f"roofline_{file_stem(hw.name)}",
                                ps.roofline_figure(sim.roofline_ops, hw, measured_df=meas)))
        elif kind == "op-breakdown":
            figures.append(("op_breakdown", ps.op_breakdown_figure(sim.breakdown_ops, model=models[0].name,
                                                                   hardware=profiles[0].name)))
        elif kind == "hardware-comparison":
            figures.append(("hardware_comparison", ps.hardware_comparison_figure(sim.comparison,
                                                                                 model=models[0].name)))
        elif kind == "pareto":
            from .plots_plan import pareto_figure

            result = _plan_result(models[0], profiles, tpot_s)
            target = f"TPOT <= {tpot_s * 1e3:g} ms" if tpot_s else "no TPOT target"
            title = (f"{models[0].name}: decode Pareto front, in {PLAN_INPUT_LEN} / out {PLAN_OUTPUT_LEN} tokens, "
                     f"{target} (roofline)")
            figures.append(("pareto", pareto_figure(result.pareto, chosen=result.table, title=title,
                                                    tpot_target_s=tpot_s)))
        elif kind == "pred-vs-measured":
            figures.append(("pred_vs_measured", pm.pred_vs_measured_figure(inputs.validation_cases)))
        elif kind == "expert-load":
            figures.append(("expert_load", pm.expert_load_figure(inputs.expert_load)))
    bad = [f for f in image_formats if f not in IMAGE_FORMATS]
    if bad:
        raise ConfigError(f"--image-format: expected one of {', '.join(IMAGE_FORMATS)}, got {bad[0]!r}")
    written = []
    with new_folder(out):
        for name, fig in figures:
            for fmt in dict.fromkeys(image_formats):
                written.append(save_one(fig, out / f"{name}.{fmt}", "--out", **({"dpi": dpi} if dpi else {})))
    return written
