"""Read a live-training page's results back: the table, the computed sentences and the notice, and
check that the words agree with the numbers beside them (shared by the toy and image page tests)."""
from __future__ import annotations

import re

import pandas as pd

NAMES = {"SGD": "sgd", "EMA": "ema", "SEMA": "sema", "SWA": "swa", "Lookahead": "lookahead"}
VERDICT = re.compile(r"^- (\w+) − (\w+) (.+?): ([+-]\d+\.\d) \[([+-]\d+\.\d), ([+-]\d+\.\d)\] "
                     r"\(95 % paired t, (\d+) seeds\): (.+)$", re.M)
MEAN_STD = re.compile(r"^(\d+\.\d) ± (\d+\.\d)")


def table_means(table: pd.DataFrame, column: str) -> dict[str, float]:
    """Method → the mean of a 'mean ± std' column (methods whose cell is 'never' are left out)."""
    out = {}
    for method, cell in zip(table["Method"], table[column]):
        match = MEAN_STD.match(str(cell))
        if match:
            out[method] = float(match.group(1))
    return out


def verdicts(text: str) -> list[dict]:
    return [dict(a=m[0], b=m[1], what=m[2], mean=float(m[3]), low=float(m[4]), high=float(m[5]), n=int(m[6]),
                 tail=m[7]) for m in VERDICT.findall(text)]


def check(text: str, table: pd.DataFrame, seeds: int, question: str, threshold_pct: int) -> list[dict]:
    """Assert that the sentences agree with the table; return the parsed verdicts."""
    headline = {"accuracy": "**The question here is the final test accuracy.**",
                "speed": "**The question here is speed:**", "stability": "**The question here is stability:**",
                "identity": "**The question here: with α = 0"}[question]
    assert text.startswith(headline), text
    if question == "identity":
        return []
    found = verdicts(text)
    methods = list(table["Method"])
    assert {(v["a"], v["b"]) for v in found if "final test accuracy" in v["what"]} == \
        {("SEMA", m) for m in methods if m != "SEMA"}, text
    finals = table_means(table, "Final test accuracy (%)")
    clean = (table["Diverged"] == "—").all()
    for v in found:
        assert v["n"] == seeds, v                                   # the seeds are always named, and right
        assert v["low"] <= v["mean"] <= v["high"], v
        too_few = v["tail"].startswith("too few seeds to tell")
        assert too_few == (seeds < 5), v
        if v["tail"] == f"{v['a']} is better.":
            better, worse = v["a"], v["b"]
        elif v["tail"] == f"{v['b']} is better.":
            better, worse = v["b"], v["a"]
        else:
            assert too_few or v["tail"] == "the interval holds 0: no clear winner.", v
            assert too_few or v["low"] <= 0 <= v["high"], v
            continue
        assert v["low"] > 0 or v["high"] < 0, v                     # a winner only when the interval excludes 0
        if "final test accuracy" in v["what"] and clean:
            assert finals[better] > finals[worse], (v, finals)      # the table says the same
    if clean:                                                        # paired mean = difference of the means
        for v in found:
            if "final test accuracy" in v["what"]:
                assert abs(v["mean"] - (finals[v["a"]] - finals[v["b"]])) <= 0.11, (v, finals)
    if question == "speed":
        column = f"Epochs to {threshold_pct}% test accuracy"
        for method, cell in zip(table["Method"], table[column]):
            cell = str(cell)
            match = re.search(rf"{method} (\d+) of (\d+)(?: \(mean (\d+\.\d) epochs)?", text)
            assert match, (method, text)
            reached, total = int(match.group(1)), int(match.group(2))
            assert total == seeds
            if cell.startswith("never"):
                assert reached == 0, (cell, match.group(0))
            else:
                assert float(match.group(3)) == float(MEAN_STD.match(cell).group(1)), (cell, match.group(0))
                assert (f"({reached} of {total} seeds; {total - reached} never)" in cell) == (reached < total), cell
    return found
