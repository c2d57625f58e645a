"""The README's Python examples run as written (the section "Use from Python")."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    section = README.read_text().split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    """Each block runs; the quickstart folder the last block reads is produced by a quick run first."""
    from plasticlab.experiments import run_experiment

    blocks = _python_blocks()
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    run_experiment("quickstart", tmp_path / "runs" / "quickstart", quick=True, progress=False, plots=False)
    namespace: dict = {}  # one namespace: later blocks use the names (``pl``) of earlier ones, as a reader would
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "(3, 3)" in out and "curl" in out and "sam" in out  # the grid's (cells, seeds) and every rule ran
