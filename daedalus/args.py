"""Shared argument parsing: comma lists with k/M suffixes, repeatable names, output format."""

from __future__ import annotations

import argparse

from simulators.errors import ConfigError
from simulators.hardware import resolve_profile
from simulators.variants import resolve_variant

from .output import FORMATS

_SUFFIX = {"k": 1024, "m": 1024 * 1024}


def int_list(flag: str, values: list[str] | None, default: list[int]) -> list[int]:
    """`--context 4096,128k --context 1m` -> [4096, 131072, 1048576] (k = 1024 tokens)."""
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
                n = int(float(digits) * mult) if "." in digits else int(digits) * mult
            except ValueError:
                raise ConfigError(f"{flag}: expected comma-separated integers (k = 1024), got {item!r}") from None
            if n < 1:
                raise ConfigError(f"{flag}: expected positive integers, got {item!r}")
            out.append(n)
    return out


def str_list(values: list[str] | None, default: list[str]) -> list[str]:
    if not values:
        return default
    return [s.strip() for chunk in values for s in chunk.split(",") if s.strip()]


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def add_models(p: argparse.ArgumentParser, help_default: str) -> None:
    p.add_argument("--model", action="append", metavar="NAME|PATH",
                   help=f"model name, alias, or path to a model YAML / HF config.json; repeatable ({help_default})")


def add_hardware(p: argparse.ArgumentParser, help_default: str) -> None:
    p.add_argument("--hardware", action="append", metavar="NAME|PATH",
                   help=f"hardware profile name or path to a hardware YAML; repeatable ({help_default})")


def add_dtypes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weight-dtype", default=None, help="weight storage dtype (default: the checkpoint's)")
    p.add_argument("--act-dtype", default="bf16", help="activation dtype (default: bf16)")
    p.add_argument("--kv-dtype", default="bf16", help="KV-cache dtype (default: bf16; fp6 = 6-bit KV)")


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
