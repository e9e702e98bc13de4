"""The notebooks assert published numbers (source and tolerance beside each assertion); executing them
headless with the venv's kernel is the test. Also: what ships is what the generator writes, outputs
stripped."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = runpy.run_path(str(REPO / "notebooks" / "build.py"))
NAMES = list(BUILD["NOTEBOOKS"])


def test_kernel_runs_this_interpreter():
    """nbclient's `python3` kernel must start the interpreter the tests run in (the venv with the package)."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=BUILD["KERNEL"])
    assert Path(km.format_kernel_cmd()[0]).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("name", NAMES)
def test_shipped_notebook_is_generated_and_stripped(name):
    shipped = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    assert shipped == BUILD["build"](name), "stale: run `python notebooks/build.py`"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in shipped.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this tree's packages
    nb = BUILD["execute"](REPO / "notebooks" / f"{name}.ipynb")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 1, "every notebook draws at least one figure"


def test_there_are_four_notebooks():
    assert sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb")) == sorted(NAMES) and len(NAMES) == 4
