"""`daedalus` command line. Each subcommand lives in `daedalus/commands/<name>.py` and exposes
`register(subparsers)`; errors from bad input become one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from simulators.errors import ConfigError

from .commands import COMMANDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"daedalus: error: {message}\n")
        raise SystemExit(2)


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


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; with `argv` naming a command, only that command's module is imported (the
    others get an empty stub), so `daedalus hardware` does not pay for pandas / scipy imports."""
    parser = _Parser(prog="daedalus", description="Daedalus: roofline simulation and measured benchmarks of "
                     "DeepSeek-style LLMs (MLA attention, fine-grained MoE) on real hardware profiles.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    wanted = next((a for a in argv or [] if not a.startswith("-")), None)
    stub_all = wanted is None and "--version" in (argv or [])
    for name in COMMANDS:
        if stub_all or (wanted in COMMANDS and name != wanted):
            sub.add_parser(name)  # never parsed: argv names another command
            continue
        importlib.import_module(f"daedalus.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        sys.stderr.write(f"daedalus: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("daedalus: interrupted\n")
        return 130
    except BrokenPipeError:  # `daedalus ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
