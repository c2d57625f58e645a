"""Re-render the ledger blocks of README.md (``plasticlab ledger --markdown --summary``), docs/ledger.md
(``plasticlab ledger --markdown``) and docs/hebb.md's Table 1 (``experiments.hebb.table1.ledger_markdown``) from
the committed records; run after every ``plasticlab ledger --record``.

    python tools/render_ledger.py
"""

from __future__ import annotations

import re
from pathlib import Path

from plasticlab import ledger as L
from plasticlab.report import PAPERS

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- ledger:begin -->\n)(.*?)(<!-- ledger:end -->)", re.S)


def render(path: Path, summary_only: bool) -> None:
    table = L.markdown(ROOT / "reproductions", summary_only=summary_only, papers=PAPERS)
    text = path.read_text()
    if not BLOCK.search(text):
        raise SystemExit(f"{path} has no <!-- ledger:begin --> ... <!-- ledger:end --> block")
    path.write_text(BLOCK.sub(lambda m: m.group(1) + table + m.group(3), text))


TABLE1 = re.compile(r"(<!-- hebb-table1:begin -->\n)(.*?)(<!-- hebb-table1:end -->)", re.S)


def render_table1(path: Path) -> None:
    """docs/hebb.md's Table 1 block, laid out as the paper's table, from the committed hebb-table1 record."""
    from plasticlab.experiments.hebb.table1 import ledger_markdown

    text = path.read_text()
    if not TABLE1.search(text):
        raise SystemExit(f"{path} has no <!-- hebb-table1:begin --> ... <!-- hebb-table1:end --> block")
    table = ledger_markdown(ROOT / "reproductions")
    path.write_text(TABLE1.sub(lambda m: m.group(1) + table + m.group(3), text))


if __name__ == "__main__":
    render(ROOT / "README.md", summary_only=True)
    render(ROOT / "docs" / "ledger.md", summary_only=False)
    render_table1(ROOT / "docs" / "hebb.md")
    print("rendered README.md, docs/ledger.md and docs/hebb.md's Table 1")
