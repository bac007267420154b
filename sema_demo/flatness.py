"""The Flatness page's claim, checked against what a run measured (no Streamlit, no torch).

The SEMA paper's abstract claims that switching the EMA back gives "a better trade-off
between flatness and sharpness" than the plain optimizer and EMA.  It does not say that
SEMA is both the deepest and the flattest.  :func:`tradeoff` reads that claim as a rule on
two paired comparisons per rival (same seeds, so per-seed differences):

* **depth**: the training loss at the solution (lower = deeper);
* **flatness**: λ_max, the top Hessian eigenvalue (lower = flatter).

Each comparison is a :func:`sema_demo.stats.verdict` (95 % paired t, "too few seeds to
tell" below ``MIN_SEEDS_TO_TELL``).  SEMA has a *better trade-off* than a rival when it is
better on one axis and not worse on the other, a *worse* one when it is worse on one and
not better on the other, a *different* one when it wins one and loses the other, and *no
measurable difference* when both intervals hold 0.

:func:`auto_clip` picks the 2-D colour scale's top so that few points saturate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import MIN_SEEDS_TO_TELL, Verdict, verdict

AXES = (("depth", "training loss", "deeper", "shallower"), ("lambda_max", "λ_max", "flatter", "sharper"))
SATURATION_TARGET = 0.05   # auto_clip: at most this share of any panel's points above the top colour


@dataclass(frozen=True)
class Rival:
    """SEMA against one rival method, on both axes."""

    rival: str
    verdicts: dict[str, Verdict]    # axis column -> verdict("sema" is a, the rival is b; lower is better)
    outcome: str                    # "better" | "worse" | "different" | "same" | "too few"

    def won(self, column: str) -> bool:
        return self.verdicts[column].outcome == "a"

    def lost(self, column: str) -> bool:
        return self.verdicts[column].outcome == "b"


def _outcome(verdicts: dict[str, Verdict]) -> str:
    outcomes = [v.outcome for v in verdicts.values()]
    if "too few" in outcomes:
        return "too few"
    wins, losses = outcomes.count("a"), outcomes.count("b")
    if wins and losses:
        return "different"
    if wins:
        return "better"
    if losses:
        return "worse"
    return "same"


def tradeoff(rows: pd.DataFrame, method: str = "sema", rivals=("sgd", "ema")) -> list[Rival]:
    """``method`` against each rival in ``rows`` (one row per method and seed), paired by seed."""
    per_method = {m: g.set_index("seed") for m, g in rows.groupby("method")}
    if method not in per_method:
        return []
    own, result = per_method[method], []
    for rival in (r for r in rivals if r in per_method and r != method):
        other = per_method[rival]
        seeds = own.index.intersection(other.index)
        verdicts = {column: verdict(own.loc[seeds, column].to_numpy(float), other.loc[seeds, column].to_numpy(float),
                                    higher_is_better=False) for column, *_ in AXES}
        result.append(Rival(rival, verdicts, _outcome(verdicts)))
    return result


def _means(rows: pd.DataFrame, method: str, column: str) -> float:
    return float(rows.loc[rows["method"] == method, column].mean())


def claim_lines(rows: pd.DataFrame, names: dict[str, str], method: str = "sema") -> list[str]:
    """One markdown line per rival: the numbers, the paired intervals and what they say."""
    name = lambda m: names.get(m, m)  # noqa: E731
    lines = []
    for r in tradeoff(rows, method):
        parts = []
        for column, label, lower, higher in AXES:
            v = r.verdicts[column]
            word = {"a": lower, "b": higher, "tie": "no clear difference",
                    "too few": "too few seeds to tell"}[v.outcome]
            iv = v.interval
            interval = (f", difference {iv.mean:+.3g} [{iv.low:+.3g}, {iv.high:+.3g}]" if iv.n >= 2 and
                        np.isfinite(iv.low) else "")
            parts.append(f"{label} {_means(rows, method, column):.3g} vs {_means(rows, r.rival, column):.3g}"
                         f"{interval}" + ("" if v.outcome == "too few" else f" → **{word}**"))
        n = r.verdicts[AXES[0][0]].n
        summary = {"better": "a better trade-off", "worse": "a worse trade-off",
                   "different": "a different trade-off (it wins on one axis and loses on the other)",
                   "same": "no measurable difference on either axis",
                   "too few": f"too few seeds to tell (fewer than {MIN_SEEDS_TO_TELL})"}[r.outcome]
        lines.append(f"**{name(method)} vs {name(r.rival)}** ({n} paired seeds): {summary}. " + "; ".join(parts) + ".")
    return lines


def claim_holds(rows: pd.DataFrame, method: str = "sema") -> str:
    """"yes" (better than every rival), "no" (worse than one), "partly" or "too few"."""
    outcomes = [r.outcome for r in tradeoff(rows, method)]
    if not outcomes or "too few" in outcomes:
        return "too few"
    if all(o == "better" for o in outcomes):
        return "yes"
    if any(o == "worse" for o in outcomes):
        return "no"
    return "partly"


def auto_clip(grids: dict[str, np.ndarray], share: float = SATURATION_TARGET) -> float:
    """A colour-scale top above which at most ``share`` of each panel's finite points lie.

    The largest of the panels' (1 − share) quantiles: every panel keeps at least 1 − share
    of its points inside the scale (points that are not finite are always drawn at the top).
    """
    tops = [float(np.quantile(g[np.isfinite(g)], 1 - share)) for g in grids.values() if np.isfinite(g).any()]
    return max(tops) if tops else 1.0


def saturated_share(grids: dict[str, np.ndarray], top: float) -> dict[str, float]:
    """Per panel, the share of points drawn at the top colour (above ``top`` or not finite)."""
    return {m: float((~np.isfinite(g) | (g > top)).mean()) for m, g in grids.items()}
