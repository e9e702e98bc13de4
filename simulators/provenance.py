"""Sourced values: every number in a data file carries its source and status."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

STATUSES = ("datasheet", "derived", "estimate", "measured", "published-measurement")


@dataclass(frozen=True)
class Sourced:
    """One number from a data file with its provenance.

    status: datasheet (vendor or author published), derived (arithmetic on datasheet values,
    see formula), estimate (secondary or inferred; range when contested), measured (our own
    benchmark; run id in source) or published-measurement (a benchmark someone else published).
    """

    value: float
    status: str
    source: str
    formula: str | None = None
    note: str | None = None
    range: tuple[float, float] | None = None


def parse_sourced(raw: Any, where: str, *, positive: bool = True) -> Sourced:
    """Validate a `{value, status, source, ...}` mapping; `where` names file and field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with value, status and source, got {type(raw).__name__}")
    for key in ("value", "status", "source"):
        if key not in raw:
            raise ConfigError(f"{where}: missing required key '{key}'")
    value = raw["value"]
    if isinstance(value, str):  # PyYAML (YAML 1.1) reads 989.4e12 without an exponent sign as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}.value: expected a number, got {value!r}")
    if not _in_range(value):  # .inf / .nan, or a magnitude no figure has (and int64 would wrap)
        raise ConfigError(f"{where}.value: expected a finite number below 2**63, got {value!r}")
    if positive and not value > 0:
        raise ConfigError(f"{where}.value: expected a positive number, got {value!r}")
    status = raw["status"]
    if status not in STATUSES:
        raise ConfigError(f"{where}.status: expected one of {', '.join(STATUSES)}, got {status!r}")
    source = raw["source"]
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{where}.source: expected a non-empty string")
    rng = raw.get("range")
    if rng is not None:
        if (
            not isinstance(rng, (list, tuple))
            or len(rng) != 2
            or not all(_is_number(x) and _in_range(float(x)) for x in rng)
            or float(rng[0]) > float(rng[1])
        ):
            raise ConfigError(f"{where}.range: expected [low, high] numbers with low <= high")
        rng = (float(rng[0]), float(rng[1]))
    unknown = set(raw) - {"value", "status", "source", "formula", "note", "range"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return Sourced(
        value=float(value),
        status=status,
        source=source.strip(),
        formula=raw.get("formula"),
        note=raw.get("note"),
        range=rng,
    )


def _is_number(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    try:
        float(x)
    except (TypeError, ValueError):
        return False
    return True


def _in_range(x: float) -> bool:
    """Finite and of magnitude below 2**63 (the int64 limit: larger counts wrap to negative)."""
    try:
        return math.isfinite(float(x)) and abs(x) < 2**63
    except OverflowError:  # an int too large for a float
        return False
