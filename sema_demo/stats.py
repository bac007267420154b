"""Summaries over seeds: results that vary with the seed are shown as mean ± std."""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaNs are ignored."""
    a = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def format_mean_std(values: Iterable[float], digits: int = 2, scale: float = 1.0) -> str:
    """'83.20 ± 1.40' (or 'n/a' when nothing is left after dropping NaNs)."""
    m, s = mean_std(values)
    if math.isnan(m):
        return "n/a"
    return f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}"
