"""An append-only, fsync'd journal of finished benchmark cases: `<run>/cases.jsonl`, one JSON line per
case (its measured row, every raw sample, the expert load), so that a case is finished exactly when
its line is durable on disk.

Why: rewriting measured.csv and samples.csv whole after every case leaves windows where a `kill -9`
or a power cut keeps one and loses the other. One line appended with O_APPEND and fsync'd is all or
nothing; a line cut short by a crash is the last line, lacks its newline or fails its checksum, and is
dropped on the next open (with a message), so that case is measured again. A damaged line anywhere
else means something other than this writer changed the file: refused with a one-line ConfigError.

Line format: {"v": 1, "crc": <crc32 of the payload's JSON>, "payload": {"case_id", "row", "samples_s",
"load"}}. NaN is written as JSON NaN (Python's json reads it back).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.errors import ConfigError, raise_with_path
from simulators.safe_load import read_regular

JOURNAL = "cases.jsonl"
VERSION = 1


@dataclass
class Entry:
    case_id: str
    row: dict[str, Any]
    samples_s: list[float] = field(default_factory=list)
    load: list[int] | None = None


def _plain(v: Any) -> Any:
    """numpy / pandas scalars to plain Python for json."""
    if hasattr(v, "item"):
        try:
            return v.item()
        except (TypeError, ValueError):
            pass
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (ImportError, TypeError, ValueError):
        pass
    return str(v)


def _encode(entry: Entry) -> bytes:
    payload = {"case_id": entry.case_id, "row": {k: _plain(v) for k, v in entry.row.items()},
               "samples_s": [float(x) for x in entry.samples_s],
               "load": None if entry.load is None else [int(x) for x in entry.load]}
    body = json.dumps(payload, separators=(",", ":"), default=_plain)
    crc = zlib.crc32(body.encode())
    return (json.dumps({"v": VERSION, "crc": crc}, separators=(",", ":"))[:-1]
            + f',"payload":{body}}}\n').encode()


def _decode(line: bytes) -> Entry | None:
    """An entry, or None when the line is damaged (not JSON, wrong checksum, wrong shape)."""
    try:
        doc = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != VERSION or not isinstance(doc.get("payload"), dict):
        return None
    p = doc["payload"]
    body = json.dumps(p, separators=(",", ":"))  # dumps(loads(x)) == x: floats round-trip, order is kept
    if zlib.crc32(body.encode()) != doc.get("crc"):
        return None
    if not isinstance(p.get("case_id"), str) or not isinstance(p.get("row"), dict) \
            or not isinstance(p.get("samples_s"), list) or not (p.get("load") is None or isinstance(p["load"], list)):
        return None
    return Entry(p["case_id"], p["row"], p["samples_s"], p["load"])


class Journal:
    """Append and replay one run's journal. `read()` before `append()` on resume: it drops a torn
    last line (truncating the file to its last whole entry) and reports it in `self.dropped`."""

    def __init__(self, run_dir: str | os.PathLike, name: str = JOURNAL):
        self.path = Path(run_dir) / name  # `comm.jsonl` for bench --comm's collectives (bench/comm.py)
        self.dropped: list[str] = []  # one message per torn entry removed by read()

    def exists(self) -> bool:
        return self.path.exists()

    def read(self, repair: bool = True) -> list[Entry]:
        """Every whole entry, in order. A damaged last line is dropped (and, with `repair`, cut off
        the file); a damaged line before the last raises ConfigError."""
        try:
            data = read_regular(self.path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read the run journal ({exc.strerror or exc})") from None
        entries: list[Entry] = []
        offset = 0
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: b"" when the file ends cleanly
        for i, line in enumerate(lines):
            entry = _decode(line + b"\n") if line else None
            if entry is None:
                if i == len(lines) - 1 and not tail:
                    self._drop(offset, line, repair)
                    return entries
                raise ConfigError(f"{self.path}: damaged entry at line {i + 1} (not the last line, so not an "
                                  "interrupted write); move the file away to measure the run again")
            entries.append(entry)
            offset += len(line) + 1
        if tail:
            self._drop(offset, tail, repair)
        return entries

    def _drop(self, offset: int, line: bytes, repair: bool) -> None:
        guess = ""
        try:
            start = line.decode("utf-8", "replace")
            if '"case_id":"' in start:
                guess = " (case " + start.split('"case_id":"', 1)[1].split('"', 1)[0] + ")"
        except Exception:  # noqa: BLE001 - only for the message
            pass
        self.dropped.append(f"{self.path.name}: the last entry{guess} was cut short by an interrupted write; "
                            "that case will be measured again")
        if repair:
            with open(self.path, "r+b") as fh:
                fh.truncate(offset)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, case_id: str, row: dict[str, Any], samples_s: Sequence[float] = (),
               load: Sequence[int] | None = None) -> None:
        """Append one finished case and fsync: when this returns, the case survives a crash."""
        line = _encode(Entry(case_id, dict(row), list(samples_s), None if load is None else list(load)))
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            view = memoryview(line)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except OSError as exc:  # disk full: a part-written line is a torn last line, dropped on open
            raise_with_path(exc, self.path)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.path.parent)


def fsync_dir(path: Path) -> None:
    """Make a new directory entry (a created or renamed file) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
