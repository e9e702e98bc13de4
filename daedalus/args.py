"""Shared argument parsing: comma lists with k/M suffixes, repeatable names, output format; and the
checks every parsed flag goes through (`check_flags`, called by the CLI before a command runs)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from simulators.checks import INT_LIMIT, integer
from simulators.errors import ConfigError
from simulators.hardware import resolve_profile
from simulators.variants import resolve_variant

from .output import FORMATS

_SUFFIX = {"k": 1024, "m": 1024 * 1024}


def int_list(flag: str, values: list[str] | None, default: list[int]) -> list[int]:
    """`--context 4096,128k --context 1m` -> [4096, 131072, 1048576] (k = 1024 tokens). A decimal is
    accepted only where it names a whole number (`1.5k` = 1536); `1.5`, `nan`, `1e400` are refused."""
    if not values:
        return default
    out: list[int] = []
    for chunk in values:
        for item in chunk.split(","):
            item = item.strip().lower()
            if not item:
                continue
            mult = _SUFFIX.get(item[-1], 1)
            digits = item[:-1] if item[-1] in _SUFFIX else item
            try:
                exact = Decimal(digits) * mult
            except (InvalidOperation, ValueError):
                raise ConfigError(f"{flag}: expected comma-separated integers (k = 1024), got {item!r}") from None
            if not exact.is_finite() or exact != exact.to_integral_value():
                raise ConfigError(f"{flag}: expected whole numbers (k = 1024), got {item!r}")
            n = int(exact)
            if n < 1:
                raise ConfigError(f"{flag}: expected positive integers, got {item!r}")
            if n >= INT_LIMIT:
                raise ConfigError(f"{flag}: expected integers below 2**63, got {item!r}")
            out.append(n)
    return out


def str_list(values: list[str] | None, default: list[str]) -> list[str]:
    if not values:
        return default
    return [s.strip() for chunk in values for s in chunk.split(",") if s.strip()]


# enums the commands share; argparse `choices`, so a typo is refused at once (one line, exit 2)
DEVICES = ("auto", "cpu", "cuda", "npu")  # bench.device.DEVICES (that module imports torch)
BENCH_DTYPES = ("fp32", "bf16", "fp16")  # bench.device.TORCH_DTYPES
MODES = ("achievable", "speed_of_light", "calibrated")  # simulators.roofline.MODES
MLA_MODES = ("auto", "naive", "absorbed")  # simulators.attention.MLA_MODES + auto


def _dtype_names() -> list[str]:
    from simulators.units import DTYPE_ALIASES, DTYPE_BYTES

    return list(DTYPE_BYTES) + list(DTYPE_ALIASES)


def _lower(text: str) -> str:
    return text.strip().lower()


def add_format(p: argparse.ArgumentParser, what: str = "output") -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help=f"{what} format (default: table)")


def add_results(p: argparse.ArgumentParser, default: str = "results") -> None:
    p.add_argument("--results", default=default, metavar="DIR", help=f"folder of run folders (default: {default})")


class _Newest:
    """The value of a bare `--run-id` (figures: nargs='?'): the newest run. Not a string, so an
    explicit `--run-id ''` (an unset shell variable) is refused instead of meaning the newest run."""

    def __repr__(self) -> str:
        return "NEWEST_RUN"


NEWEST_RUN = _Newest()


def add_run_id(p: argparse.ArgumentParser, help_text: str, **kw: Any) -> None:
    """`--run-id ID` (the one spelling); `--run` stays as a hidden, deprecated alias."""
    kw.setdefault("default", None)
    p.add_argument("--run-id", dest="run_id", metavar="ID", help=help_text, **kw)
    p.add_argument("--run", dest="run_id", help=argparse.SUPPRESS, **{k: v for k, v in kw.items() if k != "default"})


def add_resume(p: argparse.ArgumentParser, help_text: str) -> None:
    """`--resume` is a switch everywhere (the run named by --run-id, else the newest)."""
    p.add_argument("--resume", action="store_true", help=help_text)


def legacy_argv(argv: list[str]) -> list[str]:
    """The older `--resume ID` (bench took a value) -> `--resume --run-id ID`. No daedalus command has
    positional arguments, so a word after `--resume` can only be that old value."""
    out: list[str] = []
    for i, a in enumerate(argv):
        out.append(a)
        if a == "--resume" and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            out.append("--run-id")
        elif a.startswith("--resume="):
            value = a.partition("=")[2]
            out[-1:] = ["--resume", "--run-id", value] if value else ["--resume"]
    return out


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=_lower, choices=DEVICES, default="auto",
                   help="auto (default: cuda, then npu, then cpu), cpu, cuda or npu")


def add_mode(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", type=_lower, choices=MODES, default="achievable",
                   help="achievable (default: published kernel rates), speed_of_light (datasheet peaks, an upper "
                        "bound) or calibrated (a measured profile's rate curves)")
    p.add_argument("--mla-mode", type=_lower, choices=MLA_MODES, default="auto",
                   help="auto (default: naive prefill, absorbed decode), naive or absorbed")


def add_models(p: argparse.ArgumentParser, help_default: str) -> None:
    p.add_argument("--model", action="append", metavar="NAME|PATH",
                   help=f"model name, alias, or path to a model YAML / HF config.json; repeatable ({help_default})")


def add_hardware(p: argparse.ArgumentParser, help_default: str) -> None:
    p.add_argument("--hardware", action="append", metavar="NAME|PATH",
                   help=f"hardware profile name or path to a hardware YAML; repeatable ({help_default})")


def add_dtypes(p: argparse.ArgumentParser) -> None:
    names = _dtype_names()
    meta = "{fp32,tf32,bf16,fp16,fp8,int8,fp6,fp4}"
    p.add_argument("--weight-dtype", type=_lower, choices=names, metavar=meta, default=None,
                   help="weight storage dtype (default: the checkpoint's)")
    p.add_argument("--act-dtype", type=_lower, choices=names, metavar=meta, default="bf16",
                   help="activation dtype (default: bf16)")
    p.add_argument("--kv-dtype", type=_lower, choices=names, metavar=meta, default="bf16",
                   help="KV-cache dtype (default: bf16; fp6 = 6-bit KV)")


def wire_dtypes(p: argparse.ArgumentParser) -> None:
    """EP dispatch / combine dtypes of `plan`."""
    names = _dtype_names()
    p.add_argument("--dispatch-dtype", type=_lower, choices=names, metavar="DTYPE", default="fp8",
                   help="EP dispatch dtype (default fp8; bf16 ...)")
    p.add_argument("--combine-dtype", type=_lower, choices=names, metavar="DTYPE", default="bf16",
                   help="EP combine dtype (default bf16)")


def model_specs(values: list[str] | None, default: list[str]) -> list[str]:
    """`--model a,b:kv_heads=1,heads=16` -> ["a", "b:kv_heads=1,heads=16"]: a comma item with `=` and
    no `:` continues the previous model's variant (`simulators.variants` syntax)."""
    out: list[str] = []
    for item in str_list(values, default):
        if out and "=" in item and ":" not in item and ":" in out[-1]:
            out[-1] += "," + item
        else:
            out.append(item)
    return out


def models_from(args: argparse.Namespace, default: list[str]):
    return [resolve_variant(n) for n in model_specs(args.model, default)]


def profiles_from(args: argparse.Namespace, default: list[str]):
    return [resolve_profile(n) for n in str_list(args.hardware, default)]


# ---- flag checks: one rule per argument dest, applied to whichever subcommand has that flag -------

def _as_number(flag: str, v: Any) -> float:
    """The flag's value as a finite float (flags parsed later from strings are checked here too)."""
    if isinstance(v, bool):
        raise ConfigError(f"{flag}: expected a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{flag}: expected a number, got {v!r}") from None
    if not math.isfinite(f):
        raise ConfigError(f"{flag}: expected a finite number, got {v!r}")
    return f


def _positive(flag: str, v: Any) -> None:
    if _as_number(flag, v) <= 0:
        raise ConfigError(f"{flag}: expected a positive number, got {v!r}")


def _non_negative(flag: str, v: Any) -> None:
    if _as_number(flag, v) < 0:
        raise ConfigError(f"{flag}: expected a number >= 0, got {v!r}")


def _below_one(word: str) -> Callable[[str, Any], None]:
    def check(flag: str, v: Any) -> None:
        if not 0 <= _as_number(flag, v) < 1:
            raise ConfigError(f"{flag}: expected a {word} in [0, 1), got {v!r}")
    return check


def _integer(minimum: int) -> Callable[[str, Any], None]:
    def check(flag: str, v: Any) -> None:
        integer(v, flag, minimum)  # the core's validator: the same words for the flag and the API field
    return check


def _component(flag: str, v: Any) -> None:
    from .safety import path_component

    if isinstance(v, str):  # a bare `--run-id` (nargs='?') is NEWEST_RUN, not a string; '' is refused
        path_component(v, flag)


def _names(flag: str, v: Any) -> None:
    for chunk in v if isinstance(v, list) else [v]:
        if not isinstance(chunk, str) or not chunk.strip() or any(not s.strip() for s in chunk.split(",")):
            raise ConfigError(f"{flag}: expected a name or a path, got {chunk!r}")


def _path(flag: str, v: Any) -> None:
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{flag}: expected a path, got {v!r}")


def _prices(flag: str, v: Any) -> None:
    for item in v:
        for part in item.split(","):
            _positive(flag, part.rpartition("=")[2].strip())


def _layout(flag: str, v: Any) -> None:
    """`tp=8,dp=2,ep=16,redundant=32,batch=64`: whole numbers (>= 1, redundant >= 0); batch may be fractional."""
    seen: set[str] = set()
    for part in v.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key in seen:  # `tp=1,tp=2` would silently keep the last
            raise ConfigError(f"{flag}: {key} given twice in {v!r}")
        seen.add(key)
        if key == "batch":
            _positive(flag, value.strip())
            continue
        f = _as_number(f"{flag}: {key}", value.strip())
        low = 0 if key == "redundant" else 1
        if f != int(f) or f < low or f >= INT_LIMIT:
            raise ConfigError(f"{flag}: {key}: expected an integer >= {low}, got {value.strip()!r}")


RULES: dict[str, Callable[[str, Any], None]] = {
    "routing_skew": _non_negative, "token_zipf": _non_negative, "budget_s": _positive, "ttft_ms": _positive,
    "tpot_ms": _positive,
    "request_rate": _positive, "mtp_acceptance": _below_one("probability"),
    "cache_hit_rate": _below_one("fraction"),
    "decode_tokens": _integer(1), "max_cases": _integer(1), "world_size": _integer(1), "devices": _integer(1),
    "tp": _integer(1), "max_devices": _integer(1), "mtp_drafts": _integer(1), "redundant_experts": _integer(0),
    "run_id": _component, "run": _component, "resume": _component,
    "model": _names, "hardware": _names, "breakdown_model": _names, "breakdown_hardware": _names,
    "results": _path, "out": _path, "price_per_hour": _prices, "decode_layout": _layout, "prefill_layout": _layout,
}


def _flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """dest -> the flag as the user typed it (its long form), for every option of `parser`."""
    out = {}
    for action in parser._actions:  # noqa: SLF001 - argparse keeps no public list
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.help is not argparse.SUPPRESS:  # a hidden alias (`--run`) never names the flag
            out.setdefault(action.dest, longs[0])
    return out


def check_flags(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> None:
    """Apply RULES to every flag that was given (None: not given, default applies); refuse NUL bytes
    in any text flag. Raises ConfigError naming the flag."""
    flags = _flag_names(parser) if parser is not None else {}
    for dest, value in vars(args).items():
        if value is None or callable(value):
            continue
        flag = flags.get(dest, "--" + dest.replace("_", "-"))
        for s in value if isinstance(value, list) else [value]:
            if isinstance(s, str) and "\0" in s:
                raise ConfigError(f"{flag}: NUL byte in value {s!r}")
        rule = RULES.get(dest)
        if rule is not None and not isinstance(value, bool):  # a bool is a switch (`run --resume`)
            rule(flag, value)
