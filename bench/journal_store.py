"""`JournalStore`: the tables of one run folder with the journal (bench/journal.py) as the record of
truth; the sweep runner's (bench/run.py) only store.

    add(row, samples, load)   append the case to cases.jsonl (fsync'd: from here on the case is
                              finished), then rewrite measured.csv / samples.csv / expert_load.csv
                              from memory, each atomically (views for readers; a crash between them
                              loses nothing: the next open rebuilds them from the journal)
    load()                    replay the journal (a torn last entry is dropped with a message and its
                              case is measured again); a run from before the journal is imported
                              from its CSVs, dropping an incomplete last row; stale temp files of
                              interrupted atomic writes are removed
    write_env(env, resumed)   env.json, with the resume appended; a damaged env.json is kept aside
                              as env.json.damaged with a message, never a crash
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from simulators.errors import ConfigError
from simulators.safe_load import read_regular, read_regular_text

from . import run_folder as rf
from .journal import Journal
from .run_folder import write_atomic

STATUSES = ("ok", "skipped")
SAMPLE_COLUMNS = ["case_id", "sample", "time_s"]
LOAD_COLUMNS = ["case_id", "expert", "tokens"]
_TIME_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+00:00|Z)")  # bench.env.utc_now()


def _say(msg: str) -> None:
    sys.stderr.write(f"daedalus bench: {msg}\n")


class JournalStore:
    def __init__(self, out_dir: Path, columns: Sequence[str] = (), say: Callable[[str], None] = _say):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.columns = list(columns)
        self.say = say
        self.journal = Journal(self.dir)
        self.rows: list[dict] = []
        self._samples: dict[str, list[float]] = {}
        self._loads: dict[str, list[int]] = {}

    # ---- reading ----------------------------------------------------------------------------------
    def has_cases(self) -> bool:
        """Whether the folder already holds measured cases (journal or, from before it, measured.csv)."""
        return any((self.dir / name).exists() and (self.dir / name).stat().st_size > 0
                   for name in (self.journal.path.name, rf.MEASURED))

    def load(self) -> set[str]:
        """Read what a previous (interrupted) run finished; return its case ids."""
        self._clean_temp_files()
        if self.journal.exists():
            for entry in self.journal.read():
                self._put(entry.row, entry.samples_s, entry.load)
            for msg in self.journal.dropped:
                self.say(msg)
        elif (self.dir / rf.MEASURED).exists():
            self._import_csvs()
            for row in self.rows:  # from now on the journal is the record (the CSVs stay as views)
                cid = row["case_id"]
                self.journal.append(cid, row, self._samples.get(cid, ()), self._loads.get(cid))
        if self.rows:
            self.flush()
        return {r["case_id"] for r in self.rows}

    def _clean_temp_files(self) -> None:
        for tmp in self.dir.glob(".*.tmp"):  # write_atomic's temp files: `.<name>.<random>.tmp`
            try:
                tmp.unlink()
            except OSError:
                pass

    def _read_csv(self, name: str) -> pd.DataFrame | None:
        """A run CSV; a last line without its newline (a write cut short) is dropped first."""
        path = self.dir / name
        try:
            data = read_regular(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            self.say(f"{name}: the last line was cut short (an interrupted write); dropped")
        if not data.strip():
            return None
        try:
            return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""], encoding="utf-8")
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise ConfigError(f"{path}: damaged file ({str(exc).splitlines()[0][:120]}); move it away to measure "
                              "the run again") from None

    def _import_csvs(self) -> None:
        measured = self._read_csv(rf.MEASURED)
        if measured is None:
            return
        need = {"case_id", "status"}
        if not need <= set(measured.columns):
            raise ConfigError(f"{self.dir / rf.MEASURED}: damaged file (no {', '.join(sorted(need))} column)")
        complete = measured["status"].isin(STATUSES) & measured["case_id"].astype(str).str.len().gt(0)
        if "time_utc" in measured.columns:  # the last column: a row cut short lacks it or holds part of it
            complete &= measured["time_utc"].astype(str).str.fullmatch(_TIME_UTC)
        for cid in measured.loc[~complete, "case_id"]:
            self.say(f"{rf.MEASURED}: incomplete row for case {cid!s} (an interrupted write); it will be "
                     "measured again")
        samples = self._read_csv(rf.SAMPLES)
        loads = self._read_csv(rf.EXPERT_LOAD)
        for row in measured[complete].to_dict("records"):
            cid = row["case_id"]
            s = samples[samples["case_id"] == cid]["time_s"].tolist() if samples is not None else []
            ld = loads[loads["case_id"] == cid]["tokens"].tolist() if loads is not None else None
            if row["status"] == "ok" and not s:
                self.say(f"{rf.SAMPLES}: no raw samples for case {cid} (lost by an interrupted write); it will be "
                         "measured again")
                continue
            self._put(row, s, ld or None)

    # ---- writing ----------------------------------------------------------------------------------
    def _put(self, row: dict, samples_s: Sequence[float], load: Sequence[int] | None) -> None:
        cid = row["case_id"]
        self.rows = [r for r in self.rows if r["case_id"] != cid]
        self.rows.append(dict(row))
        self._samples[cid] = list(samples_s)
        if load is None:
            self._loads.pop(cid, None)
        else:
            self._loads[cid] = list(load)

    def add(self, row: dict, samples_s: Sequence[float] = (), load: Sequence[int] | None = None) -> None:
        """Record a finished case (durable when this returns); a case measured again replaces its row."""
        self.journal.append(row["case_id"], row, samples_s, load)
        self._put(row, samples_s, load)
        self.flush()

    def measured(self) -> pd.DataFrame:
        extra = [c for r in self.rows[:1] for c in r if c not in self.columns]
        return pd.DataFrame(self.rows).reindex(columns=self.columns + extra) if self.columns \
            else pd.DataFrame(self.rows)

    def samples(self) -> pd.DataFrame:
        parts = [pd.DataFrame({"case_id": cid, "sample": range(len(s)), "time_s": s})
                 for cid, s in self._samples.items() if s]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SAMPLE_COLUMNS)

    def expert_load(self) -> pd.DataFrame:
        parts = [pd.DataFrame({"case_id": cid, "expert": range(len(ld)), "tokens": ld})
                 for cid, ld in self._loads.items()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LOAD_COLUMNS)

    def flush(self) -> None:
        write_atomic(self.dir / rf.MEASURED, self.measured())
        write_atomic(self.dir / rf.SAMPLES, self.samples())
        write_atomic(self.dir / rf.EXPERT_LOAD, self.expert_load())

    def write_env(self, env: dict, resumed: bool) -> None:
        path = self.dir / rf.ENV
        if resumed and path.exists():
            try:
                old = json.loads(read_regular_text(path))
                if not isinstance(old, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError, ConfigError) as exc:  # also a FIFO or a folder
                aside = path.with_name(path.name + ".damaged")
                path.replace(aside)
                reason = (str(exc).splitlines() or [type(exc).__name__])[0].removeprefix(f"{path}: ")
                self.say(f"{path}: unreadable ({reason[:80]}); kept as {aside.name}, "
                         "a new one written")
                old = dict(env)
            old.setdefault("resumed", []).append({"time_utc": env.get("time_utc"), "argv": env.get("argv"),
                                                  "git": env.get("git")})
            env = old
        write_atomic(path, json.dumps(env, indent=1, default=str) + "\n")
