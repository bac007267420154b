"""Summaries over seeds: results that vary with the seed are shown as mean ± std, and paired
comparisons of two methods as the mean per-seed difference with a 95 % interval."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t


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


# ------------------------------------------------------------------ paired comparisons
# Methods of one seed share initial weights and batches, so they are compared per seed:
# the differences d_s = a_s − b_s, their mean and a 95 % interval for it.

@dataclass(frozen=True)
class PairedInterval:
    """Mean of per-seed differences with a confidence interval, and how it was made."""

    mean: float                  # mean of the per-seed differences
    low: float                   # lower end of the interval
    high: float                  # upper end
    n: int                       # seeds (pairs) used
    method: str                  # "paired t" | "paired bootstrap"
    level: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def text(self, digits: int = 2, scale: float = 1.0) -> str:
        """'+1.20 [+0.40, +2.00] (paired t, 8 seeds)'."""
        f = lambda v: f"{v * scale:+.{digits}f}"  # noqa: E731
        return f"{f(self.mean)} [{f(self.low)}, {f(self.high)}] ({self.method}, {self.n} seeds)"


def _differences(a, b=None) -> np.ndarray:
    d = np.asarray(a, dtype=float) if b is None else np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return d[np.isfinite(d)]


def paired_t(a, b=None, level: float = 0.95) -> PairedInterval:
    """Student-t interval for the mean of a − b (or of `a` alone, already differences).

    Pairs with a non-finite side are dropped.  One pair gives an infinitely wide interval.
    """
    d = _differences(a, b)
    n = d.size
    if n == 0:
        return PairedInterval(math.nan, math.nan, math.nan, 0, "paired t", level)
    mean = float(d.mean())
    if n == 1:
        return PairedInterval(mean, -math.inf, math.inf, 1, "paired t", level)
    half = float(student_t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return PairedInterval(mean, mean - half, mean + half, n, "paired t", level)


def paired_bootstrap(a, b=None, level: float = 0.95, resamples: int = 4000, seed: int = 0) -> PairedInterval:
    """Percentile bootstrap over seeds of the mean of a − b (seeded, so reproducible)."""
    d = _differences(a, b)
    n = d.size
    if n == 0:
        return PairedInterval(math.nan, math.nan, math.nan, 0, "paired bootstrap", level)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return PairedInterval(float(d.mean()), float(low), float(high), n, "paired bootstrap", level)


# ------------------------------------------------------------------ one rule for every sentence
MIN_SEEDS_TO_TELL = 5   # below this many seeds a page says "too few seeds to tell", never "significant"


@dataclass(frozen=True)
class Verdict:
    """What a page may say about ``a`` vs ``b`` from per-seed results: computed, never typed.

    ``outcome`` is "a" (a is better), "b" (b is better), "tie" (the interval holds 0) or
    "too few" (fewer than MIN_SEEDS_TO_TELL seeds with both results).
    """

    outcome: str
    interval: PairedInterval

    @property
    def n(self) -> int:
        return self.interval.n

    def sentence(self, a: str, b: str, what: str, digits: int = 1, scale: float = 1.0, unit: str = "") -> str:
        """'SEMA − SGD test accuracy: +1.2 [+0.4, +2.0] % (paired t, 8 seeds): SEMA is better.'"""
        iv = self.interval
        if iv.n == 0:
            return f"{a} vs {b} {what}: no seed has both results yet."
        f = lambda v: f"{v * scale:+.{digits}f}"  # noqa: E731
        head = f"{a} − {b} {what}: {f(iv.mean)}{unit}"
        if iv.n >= 2:
            head += f" [{f(iv.low)}, {f(iv.high)}]{unit} (95 % {iv.method}, {iv.n} seeds)"
        else:
            head += " (1 seed)"
        tail = {"a": f"{a} is better.", "b": f"{b} is better.",
                "tie": "the interval holds 0: no clear winner.",
                "too few": f"too few seeds to tell (fewer than {MIN_SEEDS_TO_TELL})."}[self.outcome]
        return f"{head}: {tail}"


def verdict(a, b, higher_is_better: bool = True, level: float = 0.95) -> Verdict:
    """Compare per-seed results ``a`` and ``b`` (same seeds, same order) with a paired t interval."""
    iv = paired_t(a, b, level)
    if iv.n < MIN_SEEDS_TO_TELL:
        outcome = "too few"
    elif not iv.excludes_zero:
        outcome = "tie"
    else:
        outcome = "a" if (iv.mean > 0) == higher_is_better else "b"
    return Verdict(outcome, iv)
