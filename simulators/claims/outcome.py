"""What a claim check returns, and how it says that what it needs has not landed yet.

A check returns an `Outcome` (Daedalus's number, or a (low, high) range, or a label) or raises
`Pending` naming the module or model it needs; the ledger turns Pending into the verdict
"not checkable" with that reason, never into a number.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import ConfigError
from ..model_config import ModelConfig, builtin_models, resolve_model


class Pending(Exception):
    """The check needs a module, function or model that is not in this tree."""


@dataclass(frozen=True)
class Outcome:
    value: Any  # float, (low, high) for a range, or a label (str)
    detail: str = ""  # how it was computed: workload, precision, baseline


def need_module(name: str, *attrs: str, why: str = "") -> ModuleType:
    """Import `name` and check it has `attrs`; Pending("needs name.attr") otherwise."""
    try:
        mod = importlib.import_module(name)
    except ImportError:
        raise Pending(f"pending: needs {name}" + (f" ({why})" if why else "")) from None
    missing = [a for a in attrs if not hasattr(mod, a)]
    if missing:
        raise Pending(f"pending: needs {name}.{missing[0]}" + (f" ({why})" if why else ""))
    return mod


def need_model(name: str, why: str = "") -> ModelConfig:
    """A shipped model, or Pending("needs model name") when it is not shipped in this tree."""
    if name.split(":")[0] not in builtin_models():
        try:
            return resolve_model(name)
        except ConfigError:
            raise Pending(f"pending: needs model {name}" + (f" ({why})" if why else "")) from None
    return resolve_model(name)
