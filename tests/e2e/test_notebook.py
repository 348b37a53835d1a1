"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_notebook_runs(home: Path) -> None:
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(home.parent)}}
    ).execute()
    outputs = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
    assert "cancer:1 sklearn classifier ('production',)" in outputs
    assert "Missing 1 input column(s): mean radius" in outputs
    assert "[('cancer', 1, {'production': 1})]" in outputs
