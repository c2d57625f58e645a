"""Write requirements.lock: the exact versions of plasticlab's dependencies (and its test extra) as installed in
this environment, resolved by uv from pyproject.toml with the installed versions as constraints. Run it in the
environment the ledger records were measured with; every run records the lock's SHA-256 (``environment``).

    pip install uv && python tools/lock.py
    pip install -r requirements.lock && pip install -e . --no-deps     # the same versions elsewhere
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                            text=True, check=True).stdout
    pins = [line for line in frozen.splitlines() if "==" in line and not line.startswith("plasticlab")]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(pins) + "\n")
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(["uv", "pip", "compile", "pyproject.toml", "--extra", "test", "--python-version", py,
                    "-c", f.name, "--no-annotate", "--custom-compile-command", "python tools/lock.py",
                    "-o", "requirements.lock", "--quiet"], cwd=ROOT, check=True)
    print(f"wrote {ROOT / 'requirements.lock'} (Python {py})")


if __name__ == "__main__":
    main()
