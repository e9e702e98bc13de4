"""The pure core names API fields; the command line names its flags for the same errors."""

from __future__ import annotations

import pytest

from daedalus.cli import main
from simulators.errors import ConfigError
from simulators.sizing import Workload


def test_core_error_names_the_field():
    with pytest.raises(ConfigError, match="^tpot_s: expected a positive number"):
        Workload(input_len=10, output_len=10, ttft_s=1.0, tpot_s=-1.0).check()


@pytest.mark.parametrize("argv,flag", [
    (["plan", "--tpot-ms", "-1"], "--tpot-ms: expected a "),
    (["plan", "--mtp-acceptance", "1.5"], "--mtp-acceptance: expected a "),
    (["simulate", "--phase", "both"], "--phase: expected prefill and/or decode"),
    (["simulate", "--mla-mode", "fused"], "argument --mla-mode: invalid choice: 'fused'"),
])
def test_cli_error_names_the_flag(argv, flag, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err
