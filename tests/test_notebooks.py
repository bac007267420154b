"""The companion notebooks: committed clean, referencing only real names, and running top to bottom."""
import ast
import importlib
import importlib.util
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    for cell in code_cells(path):
        assert not cell.outputs, f"{path.name} has outputs; clear them before committing"
        assert cell.execution_count is None, f"{path.name} has execution counts"


def sema_demo_references(source):
    """(module, name) pairs for `from sema_demo.x import name` and `sema_demo.x.name` in code."""
    tree = ast.parse(TransformerManager().transform_cell(source))  # magics become plain Python
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sema_demo":
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sema_demo":
                    yield alias.name, None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_references_only_existing_sema_demo_names(path):
    for cell in code_cells(path):
        for module, name in sema_demo_references(cell.source):
            mod = importlib.import_module(module)
            if name is not None:
                assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), \
                    f"{path.name}: {module}.{name} does not exist"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom_in_quick_mode(path, monkeypatch):
    monkeypatch.setenv("SEMA_QUICK", "1")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
