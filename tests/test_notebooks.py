"""The companion notebooks: committed clean, referencing only real names, and running top to bottom."""
import ast
import importlib
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


# What makes an output fetch a script or stylesheet from the internet (blank in a hall with no network).
URL_LOAD = re.compile(r"<script[^>]*\bsrc\s*=|<link[^>]*\bhref\s*=|@import|require(js)?\.config|https://|//cdn|unpkg|jsdelivr",
                      re.IGNORECASE)
# Outputs a front end runs or renders as markup; text/plain is only printed.
MARKUP = ("text/html", "application/javascript", "text/javascript", "image/svg+xml", "text/markdown")


def url_loads(cells) -> list[str]:
    """Every executed output that would load something from a URL: "cell N, mimetype: what"."""
    found = []
    for n, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            for mimetype, text in output.get("data", {}).items():
                if mimetype in MARKUP:
                    text = "".join(text) if isinstance(text, list) else str(text)
                    found += [f"cell {n}, {mimetype}: {m.group(0)}" for m in URL_LOAD.finditer(text)]
    return found


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
    assert not url_loads(nb.cells), f"{path.name} loads from the internet: {url_loads(nb.cells)[:5]}"


def chart_output(renderer: str) -> dict:
    """The display_data output a notebook gets for a small altair chart under ``renderer``."""
    import altair as alt
    import pandas as pd

    chart = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [1, 0]})).mark_line().encode(x="x", y="y")
    with alt.renderers.enable(renderer):
        bundle = chart._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    return {"output_type": "display_data", "data": data}


def test_url_check_catches_altairs_cdn_output_and_passes_the_offline_one():
    from sema_demo.charts.notebook import offline_charts

    cdn = url_loads([{"outputs": [chart_output("default")]}])   # altair's default: vega from jsdelivr
    assert any("https://" in hit for hit in cdn) and any("jsdelivr" in hit for hit in cdn)
    offline_charts()   # what the notebooks call: the same chart as an SVG picture, nothing to fetch
    import altair as alt
    try:
        svg = chart_output(alt.renderers.active)
    finally:
        alt.renderers.enable("default")
    assert "image/svg+xml" in svg["data"] and svg["data"]["image/svg+xml"].lstrip().startswith("<svg")
    assert url_loads([{"outputs": [svg]}]) == []
