"""The lessons are tested artifacts: each notebook runs top to bottom in a fresh kernel.

Every lesson ends its exercises with self-check cells (``assert ...``) that fail when the
claim it teaches does not hold, so a passing run means the lab still behaves as the lesson
says. Notebooks are stored without outputs; ``test_stored_without_outputs`` keeps them so.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
EXPECTED = [
    "00-tour.ipynb",
    "01-init.ipynb",
    "02-invoke.ipynb",
    "03-scaling.ipynb",
    "04-shutdown.ipynb",
    "05-throttling.ipynb",
    "06-runtime-api.ipynb",
]
CELL_TIMEOUT_S = 120
LESSON_BUDGET_S = 60  # each lesson promises to run in under a minute


def test_every_lesson_is_there() -> None:
    assert [p.name for p in LESSONS] == EXPECTED


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_opens_with_what_and_closes_its_lab(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    intro = nb.cells[0].source
    for heading in ("What you'll do", "What you'll learn", "What you'll need"):
        assert heading in intro, f"{path.name} must open with {heading!r}"
    assert "lab.dashboard()" in "".join(c.source for c in nb.cells), f"{path.name}: no dashboard"
    last = nb.cells[-1]
    assert last.cell_type == "code" and last.source.startswith("lab.close()"), (
        f"{path.name} must end with a cell that closes its lab")


@pytest.mark.timeout(CELL_TIMEOUT_S * 3)
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_top_to_bottom(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.monotonic()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    elapsed = time.monotonic() - started
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors, f"{path.name}: {errors}"
    # Generous on a loaded CI machine; the lessons themselves aim at well under a minute.
    assert elapsed < 2 * LESSON_BUDGET_S, f"{path.name} took {elapsed:.0f} s"
