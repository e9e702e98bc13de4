"""Validators shared by the loaders, the Python API and the CLI: each returns the clean value or raises
`ConfigError` naming the field (`where`: "file: field 'x'", "decode_tokens", "--batch") and what was
expected. Pure: no I/O.

    integer(v, where, minimum=1, maximum=None)   int, not bool, no fraction, minimum <= v <= maximum, < 2**63
    number(v, where, minimum=None)    finite int/float (inf, NaN refused), optionally >= minimum
    positive_number(v, where)         finite and > 0
    fraction(v, where)                finite in [0, 1]
    name(v, where)                    non-empty string, no control characters
    int_list(v, where, minimum=1)     list/tuple of integer(...)
    text(v, where, default)           a string (None: default)
    boolean(v, where)                 true / false only
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from .errors import ConfigError

INT_LIMIT = 2**63  # numpy/pandas int64, torch sizes: a larger value would wrap to negative
MAX_TOKENS = 2**53  # batch, context, token and device counts: exact as float64 (the grids compute in it)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or type(v).__name__ == "bool_"  # numpy.bool_ without importing numpy


def integer(v: Any, where: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """An integer >= `minimum` (None: no lower bound), <= `maximum` and below 2**63. A float with no fraction
    (4096.0, as YAML/JSON may give) is accepted; 1.5, True, "8", inf and NaN are not."""
    if _is_bool(v) or not isinstance(v, Real):
        raise ConfigError(f"{where}: expected an integer, got {v!r}")
    if not isinstance(v, Integral):
        f = float(v)
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{where}: expected an integer, got {v!r}")
        v = int(f)
    v = int(v)
    if minimum is not None and v < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {v}")
    if not -INT_LIMIT <= v < INT_LIMIT:
        raise ConfigError(f"{where}: expected an integer below 2**63, got {v}")
    if maximum is not None and v > maximum:
        raise ConfigError(f"{where}: expected an integer <= {maximum}, got {v}")
    return v


def number(v: Any, where: str, minimum: float | None = None, *, strict: bool = False) -> float:
    """A finite number; with `minimum`, >= minimum (> minimum when strict)."""
    if _is_bool(v) or not isinstance(v, Real):
        raise ConfigError(f"{where}: expected a number, got {v!r}")
    try:
        f = float(v)
    except OverflowError:  # an int too large for a float
        raise ConfigError(f"{where}: expected a finite number, got {v!r}") from None
    if not math.isfinite(f):
        raise ConfigError(f"{where}: expected a finite number, got {v!r}")
    if minimum is not None and (f <= minimum if strict else f < minimum):
        raise ConfigError(f"{where}: expected a number {'>' if strict else '>='} {minimum:g}, got {v!r}")
    return f


finite = number


def positive_number(v: Any, where: str) -> float:
    f = number(v, where)
    if f <= 0:
        raise ConfigError(f"{where}: expected a positive number, got {v!r}")
    return f


def fraction(v: Any, where: str) -> float:
    f = number(v, where)
    if not 0.0 <= f <= 1.0:
        raise ConfigError(f"{where}: expected a fraction in [0, 1], got {v!r}")
    return f


def name(v: Any, where: str) -> str:
    """A non-empty name (surrounding blanks stripped), no control characters."""
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{where}: expected a non-empty name, got {v!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ConfigError(f"{where}: control characters in name {v!r}")
    return v.strip()


def text(v: Any, where: str, default: str = "") -> str:
    """A string (None: `default`); a number or a mapping where text belongs is refused."""
    if v is None:
        return default
    if not isinstance(v, str):
        raise ConfigError(f"{where}: expected a string, got {v!r}")
    return v


def boolean(v: Any, where: str) -> bool:
    if not _is_bool(v):
        raise ConfigError(f"{where}: expected true or false, got {v!r}")
    return bool(v)


def int_list(v: Any, where: str, minimum: int | None = 1) -> list[int]:
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of integers, got {v!r}")
    return [integer(x, f"{where}[{i}]", minimum) for i, x in enumerate(v)]
