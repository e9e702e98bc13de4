"""Property tests of the shared validators (simulators/checks.py), the flag lists (daedalus/args.py),
the safe data-file reader (simulators/safe_load.py) and the name escapes (daedalus/safety.py).

The expected outcome of each generated input is derived independently of the code under test:
from Python's own int/float semantics, the YAML that yaml.safe_dump writes, or the definition of
the rule (e.g. "a whole number" = equal to its floor)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daedalus.args import int_list
from daedalus.safety import file_stem, mathtext_escape, neutralise_cell, path_component
from simulators import checks
from simulators.errors import ConfigError
from simulators.safe_load import MAX_DEPTH, parse_text

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 2**63

anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=8), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


# ---- checks.integer / number / fraction / name / int_list --------------------------------------

@FAST
@given(anything, st.integers(min_value=-2, max_value=3))
def test_integer_accepts_exactly_whole_numbers_in_range(v, minimum):
    whole = (not isinstance(v, bool) and isinstance(v, (int, float))
             and (isinstance(v, int) or (math.isfinite(v) and v == math.floor(v))))
    ok = whole and minimum <= int(v) < LIMIT
    if ok:
        assert checks.integer(v, "f", minimum) == int(v)
    else:
        with pytest.raises(ConfigError, match=r"^f: "):
            checks.integer(v, "f", minimum)


@FAST
@given(anything)
def test_number_is_finite_or_refused(v):
    is_num = not isinstance(v, bool) and isinstance(v, (int, float))
    try:
        finite = is_num and math.isfinite(float(v))
    except OverflowError:
        finite = False
    if finite:
        assert checks.number(v, "x") == float(v)
    else:
        with pytest.raises(ConfigError, match=r"^x: expected a (finite )?number"):
            checks.number(v, "x")


@FAST
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_fraction_and_positive(v):
    if math.isfinite(v) and 0 <= v <= 1:
        assert checks.fraction(v, "p") == v
    else:
        with pytest.raises(ConfigError, match="^p: "):
            checks.fraction(v, "p")
    if math.isfinite(v) and v > 0:
        assert checks.positive_number(v, "p") == v
    else:
        with pytest.raises(ConfigError, match="^p: "):
            checks.positive_number(v, "p")


def test_integer_edges():
    assert checks.integer(LIMIT - 1, "n") == LIMIT - 1
    assert checks.integer(4096.0, "n") == 4096  # YAML / JSON may give a whole float
    for bad in (LIMIT, True, 1.5, float("inf"), float("nan"), "8", None, 0):
        with pytest.raises(ConfigError, match=r"^n: expected an integer"):
            checks.integer(bad, "n")


def test_name_and_int_list():
    assert checks.name(" h100 ", "hardware") == "h100"
    for bad in ("", "   ", None, 3, "a\x00b", "a\nb"):
        with pytest.raises(ConfigError, match="^hardware: "):
            checks.name(bad, "hardware")
    assert checks.int_list([1, 2.0], "batches") == [1, 2]
    with pytest.raises(ConfigError, match=r"^batches\[1\]: expected an integer"):
        checks.int_list([1, 1.5], "batches")
    with pytest.raises(ConfigError, match="^batches: expected a list"):
        checks.int_list("12", "batches")


# ---- --batch / --context lists ------------------------------------------------------------------

@FAST
@given(st.integers(min_value=-5, max_value=2**70), st.sampled_from(["", "k", "m"]))
def test_int_list_integers(n, suffix):
    value = n * {"": 1, "k": 1024, "m": 1024**2}[suffix]
    if 1 <= value < LIMIT:
        assert int_list("--batch", [f"{n}{suffix}"], []) == [value]
    else:
        with pytest.raises(ConfigError, match="^--batch: "):
            int_list("--batch", [f"{n}{suffix}"], [])


@FAST
@given(st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=3), st.sampled_from(["", "k"]))
def test_int_list_decimals_never_truncate(d, suffix):
    """`1.5` must not become batch 1; `1.5k` is exactly 1536 tokens."""
    text = f"{d:f}{suffix}"
    exact = Fraction(str(d)) * (1024 if suffix else 1)
    if exact.denominator == 1 and exact >= 1:
        assert int_list("--batch", [text], []) == [int(exact)]
    else:
        with pytest.raises(ConfigError, match="^--batch: "):
            int_list("--batch", [text], [])


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e400", "1.5", "0", "-3", "0x10", "1,,2.5", "k", "--1"])
def test_int_list_refuses(bad):
    with pytest.raises(ConfigError, match="^--context: "):
        int_list("--context", [bad], [])


# ---- the data-file reader: generated YAML documents ----------------------------------------------

scalars = st.one_of(st.integers(min_value=-10**6, max_value=10**6), st.text(min_size=1, max_size=6),
                    st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False, width=32))
docs = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(min_size=1, max_size=4), inner,
                                                                     max_size=3)), max_leaves=12)


@FAST
@given(docs)
def test_reader_round_trips_what_safe_dump_writes(doc):
    text = yaml.safe_dump(doc)
    assert parse_text(text, "gen.yaml") == yaml.safe_load(text)


@FAST
@given(st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=2), st.integers(), min_size=1, max_size=4),
       st.data())
def test_reader_refuses_duplicate_keys(mapping, data):
    key = data.draw(st.sampled_from(sorted(mapping)))
    lines = [f"{k}: {v}" for k, v in mapping.items()] + [f"{key}: 0"]
    with pytest.raises(ConfigError, match=rf"^dup\.yaml: duplicate key '{key}' at line {len(lines)}"):
        parse_text("\n".join(lines) + "\n", "dup.yaml")


@FAST
@given(st.text(max_size=40))
def test_reader_never_raises_anything_but_config_error(text):
    try:
        parse_text(text, "t.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("t.yaml: ") and "\n" not in str(exc)


def test_reader_depth_cap_both_sides():
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_text(ok, "d.yaml") is not None
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(ConfigError, match="nesting deeper"):
        parse_text(deep, "d.yaml")
    with pytest.raises(ConfigError, match="nesting"):
        parse_text("[" * 100_000, "d.json", json_syntax=True)


# ---- names as paths, markup, spreadsheet cells ------------------------------------------------------

@FAST
@given(st.text(max_size=20))
def test_path_component_is_one_component_or_refused(s):
    try:
        out = path_component(s, "--run-id")
    except ConfigError as exc:
        assert str(exc).startswith("--run-id: ")
        return
    assert out == s and "/" not in s and "\\" not in s and s not in ("", ".", "..") and not s.startswith((".", "-"))


@FAST
@given(st.text(max_size=30))
def test_file_stem_is_safe(name):
    stem = file_stem(name)
    assert len(stem) <= 80 and path_component(stem) == stem  # one safe folder/file name, whatever the input


@pytest.mark.parametrize("name", [r"$\frac{1}{$", "$", "a$b$c", r"\$x", "$$", "50% off $5"])
def test_mathtext_escape_renders(name, tmp_path):
    """matplotlib raises on unbalanced mathtext at draw time; the escaped text must draw and show the
    original characters."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    ax = fig.subplots()
    ax.set_title(mathtext_escape(name))
    fig.savefig(tmp_path / "t.png")
    with pytest.raises(ValueError):  # the unescaped form really crashes (the test can fail)
        fig2 = Figure(figsize=(2, 1))
        fig2.subplots().set_title(r"$\frac{1}{$")
        fig2.savefig(tmp_path / "u.png")


@pytest.mark.parametrize("cell,expected", [("=1+2", "'=1+2"), ("+cmd", "'+cmd"), ("@SUM(A1)", "'@SUM(A1)"),
                                           ("-x", "'-x"), ("-1.5", "-1.5"), ("+3", "+3"), ("h100", "h100"),
                                           (3.0, 3.0), ("\tx", "'\tx")])
def test_neutralise_cell(cell, expected):
    assert neutralise_cell(cell) == expected
