"""The exploration notebook of a new CE-marking case runs headless (jupytext + nbclient)."""

from __future__ import annotations

import pytest
from cekit import new_case

pytestmark = pytest.mark.slow


def test_verkenning_notebook_executes(tmp_path, monkeypatch):
    import jupytext
    from nbclient import NotebookClient

    root = new_case(tmp_path / "cases", rows=20_000)
    source = root / "notebooks" / "01-verkenning.py"
    assert source.is_file()
    notebook = jupytext.read(source)
    monkeypatch.chdir(root)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(root)}}).execute()
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )  # fmt: skip
    assert "model_hit_rate" in outputs and "eenmanszaak" in outputs
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
