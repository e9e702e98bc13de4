"""`daedalus` command line. Each subcommand lives in `daedalus/commands/<name>.py` and exposes
`register(subparsers)`.

The boundary promise: whatever goes wrong, one line on stderr and an exit status, never a traceback.
    0    done
    1    the environment failed: disk full, read-only or forbidden folder, output pipe closed,
         out of memory, another I/O error
    2    bad input: a flag, a file or a name (ConfigError), or a path that cannot be one (no such
         file, a file where a folder is expected, a name too long)
    130  interrupted (Ctrl-C or SIGTERM): what was finished is kept (results are written atomically)
Only the selected command's module is imported (and nothing heavy before parsing starts), so an
interrupt during start-up is handled too.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import signal
import sys

from simulators.errors import ConfigError

from .commands import COMMAND_HELP, COMMANDS

PROG = "daedalus"
BAD_INPUT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ELOOP,
                    errno.EINVAL, errno.ENXIO}
EXIT_ENV, EXIT_INPUT, EXIT_INTERRUPTED = 1, 2, 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (like Ctrl-C), so `finally:` blocks run and finished work is kept."""


class _Parser(argparse.ArgumentParser):
    def _print_message(self, message, file=None):  # argparse swallows OSError here: `--help > /dev/full` was exit 0
        if message:
            (file or sys.stderr).write(message)

    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_INPUT)


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked (importlib.metadata
    costs ~30 ms of every start otherwise)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kw):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("daedalus")
        except PackageNotFoundError:
            text = "unknown (not installed)"
        sys.stdout.write(f"daedalus {text}\n")
        parser.exit()


def build_parser(names: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the given subcommands registered (default: all of them)."""
    parser = _Parser(prog=PROG, description="Daedalus: roofline simulation and measured benchmarks of "
                     "DeepSeek-style LLMs (MLA attention, fine-grained MoE) on real hardware profiles.")
    parser.add_argument("--version", action=_Version)
    _add_verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS if names is None else names:
        importlib.import_module(f"daedalus.commands.{name}").register(sub)
    if names == []:  # `daedalus --help` / a mistyped command: the list only, no command module imported
        for name in COMMANDS:
            sub.add_parser(name, help=COMMAND_HELP[name])
    for p in sub.choices.values():  # also after the command: `daedalus bench --quick -q`
        _add_verbosity(p, argparse.SUPPRESS)
    return parser


VERBOSITY_HELP = ("-v: debug detail; -q: no progress or notes, only warnings, errors and the final 'done:' line "
                  "(what, how long, noisy cases, where the files are); -qq: errors only")


def _add_verbosity(p: argparse.ArgumentParser, default) -> None:
    g = p.add_argument_group("verbosity (stderr; results on stdout are never affected)", VERBOSITY_HELP)
    g.add_argument("-v", "--verbose", action="count", default=default, help="more detail on stderr (repeatable)")
    g.add_argument("-q", "--quiet", action="count", default=default, help="less on stderr (repeatable)")


def _one_line(msg: object) -> str:
    return " ".join(str(msg).split("\n")).strip() or "unknown error"


def _say(msg: str) -> None:
    try:
        sys.stderr.write(f"{PROG}: {_one_line(msg)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr itself is gone: the exit status still tells


def _silence_stdout() -> None:
    """After stdout failed (closed pipe, full device), point it at /dev/null so the interpreter's
    final flush of the leftover buffer cannot fail again with an 'Exception ignored' traceback."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def describe_os_error(exc: OSError) -> tuple[str, int]:
    """(one line naming the path and the reason, exit status) for an OSError."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    path = exc.filename
    if exc.filename2:
        path = f"{exc.filename} -> {exc.filename2}"
    hint = {errno.ENOSPC: " (disk full)", errno.EROFS: " (read-only file system)",
            errno.EACCES: " (no permission)", errno.ENAMETOOLONG: " (a name is too long)",
            errno.ENOTDIR: " (a file where a folder is expected)", errno.EISDIR: " (a folder where a file is expected)",
            }.get(exc.errno, "")
    if exc.errno == errno.EEXIST and exc.filename is not None and not os.path.isdir(exc.filename):
        hint = " (a file where a folder is expected)"
    where = f"{os.fspath(path)}: " if path is not None else "writing output: " if exc.errno == errno.ENOSPC else ""
    code = EXIT_INPUT if exc.errno in BAD_INPUT_ERRNOS else EXIT_ENV
    return f"error: {where}{reason}{hint if hint.strip(' ()').lower() not in reason.lower() else ''}", code


# API field -> command-line flag where the two names differ beyond `_` -> `-`
FIELD_FLAGS = {"ttft_s": "--ttft-ms", "tpot_s": "--tpot-ms", "request_rate_per_s": "--request-rate"}
_LEAD = re.compile(r"^([a-z][a-z0-9_]*(?:\s*/\s*[a-z][a-z0-9_]*)*)(?=[:\s])")


def flag_message(message: str, sub: argparse.ArgumentParser | None) -> str:
    """The pure core names API fields ("routing_skew: expected ..."); on the command line the same
    message names the flag ("--routing-skew: expected ..."), when the command has that flag."""
    m = _LEAD.match(message)
    if not m or sub is None:
        return message
    flags = {f for a in sub._actions for f in a.option_strings}  # noqa: SLF001
    mapped = [FIELD_FLAGS.get(n.strip(), "--" + n.strip().replace("_", "-")) for n in m.group(1).split("/")]
    if not all(f in flags for f in mapped):
        return message
    return " / ".join(mapped) + message[m.end():]


def _command_names(argv: list[str]) -> list[str]:
    """Just the chosen subcommand when argv names one (others are not imported), else none: the
    top-level parser then lists the commands from COMMAND_HELP (`--help`, `--version`, a typo)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return [first] if first in COMMANDS else []


def _run(argv: list[str]) -> int:
    from . import log
    from .args import check_flags, legacy_argv

    argv = legacy_argv(argv)
    parser = build_parser(_command_names(argv))
    args = parser.parse_args(argv)
    args.verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0)
    log.setup(args.verbosity)
    sub = parser._subparsers._group_actions[0].choices.get(args.command) if parser._subparsers else None  # noqa: SLF001
    check_flags(args, sub)
    try:
        code = int(args.func(args) or 0)
    except ConfigError as exc:
        raise ConfigError(flag_message(str(exc), sub)) from None
    _flush_stdout()  # inside the guard: a full device or a closed pipe is reported here
    return code


def _flush_stdout() -> None:
    """Flush everything written to stdout (the text layer and its byte buffer), so a failing device
    raises here, inside main's guard, and never at the interpreter's exit (where it would be an
    'Exception ignored' message and exit 0 or 120 depending on timing)."""
    sys.stdout.flush()
    raw = getattr(sys.stdout, "buffer", None)
    if raw is not None:
        raw.flush()


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated(signal.Signals(signum).name)


HANDLED_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


MEASURING_COMMANDS = ("run", "bench")


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] in MEASURING_COMMANDS:
        from bench.allocator import reexec_for_measuring

        reexec_for_measuring()  # glibc reads its allocator tunables only at start (bench/allocator.py)
    argv = list(sys.argv[1:] if argv is None else argv)
    previous: dict = {}
    try:
        for sig in HANDLED_SIGNALS:  # SIGTERM (kill, a scheduler) and SIGHUP (the terminal closed)
            previous[sig] = signal.signal(sig, _on_sigterm)
    except (ValueError, OSError):  # not the main thread: leave signals alone
        pass
    try:
        return _run(argv)
    except SystemExit as exc:  # --help, --version, argparse errors
        code = exc.code
        if code is None or isinstance(code, int):
            try:
                _flush_stdout()
            except OSError as err:  # `daedalus --help > /dev/full` / `| true`: the help never arrived
                _silence_stdout()
                if not code:
                    _say("error: output closed early (broken pipe)" if isinstance(err, BrokenPipeError)
                         else describe_os_error(err)[0])
                    return EXIT_ENV
            return code or 0
        _say(f"error: {code}")
        return EXIT_INPUT
    except ConfigError as exc:
        _say(f"error: {exc}")
        return EXIT_INPUT
    except Terminated as exc:
        _say(f"terminated ({exc.args[0] if exc.args else 'SIGTERM'}); finished results are kept")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _say("interrupted; finished results are kept")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `daedalus ... | head`: the reader went away
        _silence_stdout()
        _say("error: output closed early (broken pipe)")
        return EXIT_ENV
    except OSError as exc:
        if exc.filename is None:  # stdout itself (a full device)
            _silence_stdout()
        msg, code = describe_os_error(exc)
        _say(msg)
        return code
    except RecursionError:
        _say("error: input nested too deeply")
        return EXIT_INPUT
    except MemoryError:
        _say("error: out of memory (a shape or sweep too large for this machine)")
        return EXIT_ENV
    finally:
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):
                pass


if __name__ == "__main__":
    raise SystemExit(main())
