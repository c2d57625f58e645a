"""Every example runs: each ``examples/*.py`` in a subprocess at its quick size, and the notebook under nbclient.

Scripts are found by glob, so an example added later is tested without touching this file. Under
``PLASTICLAB_EXAMPLE_QUICK=1`` an example must finish in well under 30 s on 2 cores (tiny nets, few epochs) and
print what it measured (at least one number). Scripts listed in ``EXPECTED`` must also print their specific lines.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
CPU_LIMIT_S = 45.0  # CPU seconds of one quick example (its wall-clock target is < 30 s on 2 free cores)
NUMBER = re.compile(r"[-+]?\d+\.\d+")

# lines (regular expressions, one match each) that a known example must print
EXPECTED: dict[str, list[str]] = {
    "apply_curl_or_sam_to_your_mlp.py": [rf"^{name}\s.*test accuracy (0|1)\.\d{{3}} \+- \d\.\d{{3}}"
                                         for name in ("BP", "curl, 10% flipped", r"curl, 30% \(as text\)", "SAM")],
    "hebbian_alignment_during_training.py": [r"gamma=0\s+align at steps", r"gamma=0\.05\s+align at steps",
                                             r"last quarter: signal [-+]\d\.\d{3}, full update [-+]\d\.\d{3}",
                                             r"plot saved to \S+\.png"],
}


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_examples_exist():
    assert SCRIPTS, f"no examples/*.py in {EXAMPLES}"
    assert NOTEBOOKS, f"no examples/*.ipynb in {EXAMPLES}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_example_script_runs_quick(script: Path, tmp_path: Path):
    env = {**os.environ, "PLASTICLAB_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    cpu0 = _cpu_children()
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    cpu = _cpu_children() - cpu0
    tail = f"\n--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{script.name} exited with {proc.returncode}{tail}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert any(NUMBER.search(ln) for ln in lines), f"{script.name} printed no measured number{tail}"
    for pattern in EXPECTED.get(script.name, []):
        assert any(re.search(pattern, ln) for ln in lines), f"{script.name}: no line matches {pattern!r}{tail}"
    assert cpu < CPU_LIMIT_S, (f"{script.name} took {cpu:.0f} CPU s under PLASTICLAB_EXAMPLE_QUICK=1; keep the quick "
                               f"version small (< 30 s on 2 cores)")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(notebook: Path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{notebook.name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(notebook: Path, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PLASTICLAB_EXAMPLE_QUICK", "1")
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:  # the failing cell and its traceback
        pytest.fail(f"{notebook.name}: a cell raised\n{str(err)[-4000:]}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{notebook.name}: cell errors {[(e.ename, e.evalue) for e in errors]}"
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if notebook.name == "reproduce_a_figure.ipynb":
        images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if "image/png" in o.get("data", {})]
        assert images, "the notebook shows no figure"
        assert "verdict" in text and "curl.fig1." in text, f"no claims table in the outputs:\n{text[-2000:]}"
