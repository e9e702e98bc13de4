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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="daedalus", description="Daedalus: roofline simulation and measured benchmarks of "
                     "DeepSeek-style LLMs (MLA attention, fine-grained MoE) on real hardware profiles.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"daedalus.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
