"""The seed walkthrough notebook runs from top to bottom, on a small setting."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "seed_walkthrough.ipynb"


def test_the_notebook_is_committed_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.skipif(not os.environ.get("NEWSTOPIC_DATA"),
                    reason="reads the 20 Newsgroups archive: set NEWSTOPIC_DATA")
def test_the_notebook_runs_on_a_small_setting(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # The kernel runs in notebooks/: a relative archive path (as .ci/run sets) must not move.
    monkeypatch.setenv("NEWSTOPIC_DATA", str(Path(os.environ["NEWSTOPIC_DATA"]).resolve()))
    monkeypatch.setenv("NEWSTOPIC_NOTEBOOK_EPOCHS", "1")
    monkeypatch.setenv("NEWSTOPIC_NOTEBOOK_TRAIN_LIMIT", "300")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells
                      for output in cell.get("outputs", []))
    assert "300 training and 785 test messages" in printed
    assert "The car engine needs regular maintenance. ->" in printed
    table = dict(re.findall(r"^(seed-lstm|lstm|tfidf-nb|tfidf-svm|tfidf-lr) +([01]\.\d{4}) ",
                            printed, re.M))
    assert set(table) == {"seed-lstm", "lstm", "tfidf-nb", "tfidf-svm", "tfidf-lr"}
    assert float(table["tfidf-svm"]) > 0.75  # two groups, 300 messages: far above chance
    images = [output for output in notebook.cells[-1].outputs
              if "image/png" in output.get("data", {})]
    assert images, "the comparison plot was not drawn"
