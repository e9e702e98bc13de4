"""Logging for the CLI: `-v` / `-q` set the level of the `daedalus` logger, and the one-line
summary long commands end with (what was done, how long it took, noisy cases, where the files are).

Progress and diagnostics go to stderr through `logging`; results (tables, csv, json) go to stdout,
so `daedalus ... --format csv > out.csv` stays clean whatever the verbosity.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

LOGGER = "daedalus"
DONE = 25  # between INFO and WARNING: the final `done:` line survives -q, not -qq
logging.addLevelName(DONE, "DONE")
_LEVELS = {-2: logging.ERROR, -1: DONE, 0: logging.INFO, 1: logging.DEBUG}


def level_for(verbosity: int) -> int:
    """-q -q: errors only; -q: warnings and the final `done:` line (no progress, no notes); default:
    info (progress and notes); -v and more: debug."""
    return _LEVELS[max(-2, min(1, verbosity))]


class _Handler(logging.StreamHandler):
    """Writes to the stream given, else to whatever `sys.stderr` is at the moment of writing (tests
    and callers may swap it; a closed earlier stream is never touched)."""

    def __init__(self, stream: TextIO | None = None):
        logging.Handler.__init__(self)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._fixed = value


def setup(verbosity: int = 0, stream: TextIO | None = None) -> logging.Logger:
    """Configure the `daedalus` logger once per process (idempotent: a second call only changes the
    level and the stream). `verbosity` = number of -v minus number of -q."""
    log = logging.getLogger(LOGGER)
    log.setLevel(level_for(verbosity))
    log.propagate = False
    handler = next((h for h in log.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler(stream)
        log.addHandler(handler)
    else:
        handler.stream = stream
    fmt = "%(levelname)s %(name)s: %(message)s" if verbosity > 0 else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    return log


def get(name: str | None = None) -> logging.Logger:
    """The logger of a module: `log.get(__name__)` -> `daedalus.commands.bench`."""
    if not name or name == LOGGER:
        return logging.getLogger(LOGGER)
    return logging.getLogger(name if name.startswith(LOGGER + ".") else f"{LOGGER}.{name}")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def done_line(what: str, seconds: float, n_noisy: int | None = None, where: str | Path | None = None) -> str:
    """`done: 64 benchmark cases in 3 min 12 s; 2 flagged noisy (cv > threshold); files in results/x/`.
    n_noisy None: the command measures nothing (no noisy clause)."""
    parts = [f"done: {what} in {_duration(seconds)}"]
    if n_noisy is not None:
        parts.append("none flagged noisy" if n_noisy == 0 else f"{n_noisy} flagged noisy")
    if where is not None:
        w = str(where)
        parts.append(f"files in {w + '/' if Path(w).is_dir() and not w.endswith('/') else w}")
    return "; ".join(parts)


def done(what: str, seconds: float, n_noisy: int | None = None, where: str | Path | None = None) -> str:
    """Log the summary line at DONE (shown by default and with -q, hidden by -qq) and return it."""
    line = done_line(what, seconds, n_noisy, where)
    get().log(DONE, line)
    return line
