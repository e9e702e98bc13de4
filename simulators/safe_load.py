"""The one reader of data files (model configs, hardware profiles, HF config.json): every refusal is a
one-line `ConfigError` naming the file and the problem.

Refused: a path that is not a regular file (a FIFO would block the reader forever, a directory or a
device is never a config), a file over MAX_BYTES, bytes that are not UTF-8, YAML/JSON syntax errors
(with the line), duplicate mapping keys (YAML and JSON would silently keep the last), tags outside
the safe set (`!!python/object` ...), nesting deeper than MAX_DEPTH, and JSON's NaN / Infinity.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

MAX_BYTES = 8 * 1024 * 1024  # the largest shipped file is a few kB; an HF config.json tens of kB
RUN_DOC_MAX_BYTES = 16 * 1024 * 1024  # a run's env.json / hardware_profile.yaml / .lock: a few kB written
RUN_TABLE_MAX_BYTES = 512 * 1024 * 1024  # measured.csv, samples.csv, comm.csv, cases.jsonl: a full sweep's
# samples are a few MB; a 512 MiB table is parsed into several GB by pandas, so larger is refused
MAX_DEPTH = 64  # mapping/sequence nesting; our files use < 8
_MERGE_TAG = "tag:yaml.org,2002:merge"

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def exists(path: str | os.PathLike) -> bool:
    """Whether `path` names something; False also for a string that cannot be a path (a name longer
    than the file system allows, a NUL byte), which `Path.exists` raises on: such a string is then
    taken as a shipped name and refused as an unknown one."""
    try:
        return os.path.exists(path)
    except (OSError, ValueError):
        return False


def run_file_cap(path: str | os.PathLike) -> int:
    """The most bytes `read_regular` reads of a run file: RUN_TABLE_MAX_BYTES for the tables (.csv)
    and the journal (.jsonl), RUN_DOC_MAX_BYTES for everything else (env.json, the profile, .lock)."""
    return RUN_TABLE_MAX_BYTES if os.fspath(path).endswith((".csv", ".jsonl")) else RUN_DOC_MAX_BYTES


def read_regular(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, never blocking: opened non-blocking (open() on a FIFO waits for a
    writer forever) and refused with ConfigError unless the descriptor is a regular file or when it
    holds more than `max_bytes` (default: `run_file_cap(path)`; checked on the size and again while
    reading, for a file that grows). An OSError (no such file, no permission) propagates as it is, so
    callers keep their own handling of a missing file. For the run folder's files (measured.csv,
    samples.csv, cases.jsonl, env.json, ...)."""
    cap = run_file_cap(path) if max_bytes is None else max_bytes
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{os.fspath(path)}: expected a regular file, got {_kind(st.st_mode)}")
        if st.st_size > cap:
            raise ConfigError(f"{os.fspath(path)}: file too large ({st.st_size} bytes; a run file like this is "
                              f"read up to {cap} bytes)")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > cap:
                raise ConfigError(f"{os.fspath(path)}: file too large (over {cap} bytes, the most read of a "
                                  "run file like this)")
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_regular_text(path: str | os.PathLike, max_bytes: int | None = None) -> str:
    """`read_regular` decoded as UTF-8 (UnicodeDecodeError, a ValueError, when it is not)."""
    return read_regular(path, max_bytes).decode("utf-8")


def read_bytes(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`. Checked with stat before opening (open()
    on a FIFO blocks until a writer appears) and again on the open descriptor (no swap in between)."""
    where = os.fspath(path)
    try:
        st = os.stat(where)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read file ({exc.strerror or exc})") from None
    except ValueError as exc:  # an embedded NUL byte
        raise ConfigError(f"{where!r}: invalid path ({exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{where}: expected a regular file, got {_kind(st.st_mode)}")
    if st.st_size > max_bytes:
        raise ConfigError(f"{where}: file too large ({st.st_size} bytes; a config is at most {max_bytes})")
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read file ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{where}: expected a regular file, got {_kind(os.fstat(fd).st_mode)}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise ConfigError(f"{where}: file too large (over {max_bytes} bytes)")
            chunks.append(chunk)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read file ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> str:
    data = read_bytes(path, max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{os.fspath(path)}: not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader (only plain YAML types; unknown tags are an error) that refuses duplicate keys and
    nesting deeper than MAX_DEPTH. `where` names the file in messages."""

    where = "<data>"

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"{self.where}: nesting deeper than {MAX_DEPTH} levels at line {mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # `<<: *base` merges are overridden by explicit keys, by design
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: SafeConstructor reports it below
                if first is not None:
                    raise ConfigError(f"{self.where}: duplicate key {key!r} at line {line} (first at line {first})")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_depth(value: Any, where: str) -> None:
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: nesting deeper than {MAX_DEPTH} levels")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def _json_pairs(where: str):
    def hook(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise ConfigError(f"{where}: duplicate key {k!r}")
            out[k] = v
        return out
    return hook


def _json_constant(where: str):
    def refuse(name):
        raise ConfigError(f"{where}: {name} is not a number a config may hold")
    return refuse


def parse_text(text: str, where: str, *, json_syntax: bool = False) -> Any:
    """Parse YAML (or JSON when `json_syntax`) with the refusals above; `where` names the source."""
    if json_syntax:
        try:
            value = json.loads(text, object_pairs_hook=_json_pairs(where), parse_constant=_json_constant(where))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
        except RecursionError:
            raise ConfigError(f"{where}: nesting too deep") from None
        _check_depth(value, where)
        return value
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here already
        loader.where = where
        return loader.get_single_data()
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{where}: malformed file: {exc.reason} (character {exc.character!r} at offset "
                          f"{exc.position})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        context = getattr(exc, "context", None)
        if "could not determine a constructor" in (problem or ""):
            problem = f"tag not allowed in a data file ({problem.split('tag ', 1)[-1]})"
        elif context and "duplicate" not in problem:
            problem = f"{problem} ({context})" if len(context) < 60 else problem
        raise ConfigError(f"{where}: malformed file{at}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nesting too deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_data(path: str | os.PathLike) -> Any:
    """Read and parse a data file: `.json` as JSON, anything else as YAML."""
    where = os.fspath(path)
    text = read_text(path)
    return parse_text(text, where, json_syntax=Path(where).suffix.lower() == ".json")
