"""`daedalus` command line. Each subcommand lives in `daedalus/commands/<name>.py` and exposes
`register(subparsers)`; errors from bad input become one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import re
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


# API field -> command-line flag where the two names differ beyond `_` -> `-`
FIELD_FLAGS = {"ttft_s": "--ttft-ms", "tpot_s": "--tpot-ms", "request_rate_per_s": "--request-rate"}
_LEAD = re.compile(r"^([a-z][a-z0-9_]*(?:\s*/\s*[a-z][a-z0-9_]*)*)(?=[:\s])")


def flag_message(message: str, parser: argparse.ArgumentParser, command: str | None) -> str:
    """The pure core names API fields ("routing_skew: expected ..."); on the command line the same
    message names the flag ("--routing-skew: expected ..."), when the command has that flag."""
    m = _LEAD.match(message)
    if not m:
        return message
    flags = _command_flags(parser, command)
    names = [n.strip() for n in m.group(1).split("/")]
    mapped = [FIELD_FLAGS.get(n, "--" + n.replace("_", "-")) for n in names]
    if not all(f in flags for f in mapped):
        return message
    return " / ".join(mapped) + message[m.end():]


def _command_flags(parser: argparse.ArgumentParser, command: str | None) -> set[str]:
    flags: set[str] = set()
    for action in parser._actions:  # noqa: SLF001 - argparse exposes sub-parsers only this way
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:  # noqa: SLF001
            for a in action.choices[command]._actions:  # noqa: SLF001
                flags.update(a.option_strings)
    return flags


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        sys.stderr.write(f"daedalus: error: {flag_message(str(exc), parser, getattr(args, 'command', None))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("daedalus: interrupted\n")
        return 130
    except BrokenPipeError:  # `daedalus ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
