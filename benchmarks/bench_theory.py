"""How fast are the exact noisy-quadratic curves?  The moment recurrence of sema_demo.theory
against a vectorised Monte-Carlo simulation of the same model.

Model: 100 dimensions (hᵢ = 1/i), 10,000 steps, batch 16, η = 0.5, β = 0.9, α = 0.95,
SEMA switching every 10 steps: the theory page's default at its largest run length.  One
exact call yields all three methods (SGD, EMA, SEMA; θ and φ).  The Monte-Carlo run
simulates 1,000 independent runs of the same model at once (numpy, vectorised over runs
and dimensions, one Python iteration per step) and records the same mean curves.
Medians of calls measured side by side (exact, Monte Carlo, exact, …) after a warm-up,
with numpy's BLAS limited to one thread: the products are small, and on a shared 2-core
machine a second BLAS thread mostly measures the neighbours (3× slower under load).  The
same exact call with the default BLAS threads is printed as context.

The map (``theory.default_map``, the Theory page's tab): 30 × 30 cells of (EMA horizon ÷ K, K)
at 1,000 steps, against the same cells computed one ``exact_curves`` call each.  900 single
calls would take a minute, so the singles are timed on 30 cells spread over the grid (one per
column, rows cycling) and scaled to 900.

    python benchmarks/bench_theory.py [--quick] [--check]
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from benchlib import Report, alternate, header, median, parse_args  # noqa: E402
from sema_demo.theory import NQM, SERIES, default_map, exact_curves, monte_carlo  # noqa: E402

EXACT_BOUND_S = 0.2   # the bound for 100 dimensions × 10,000 steps × 3 methods
MAP_BOUND_S = 2.0     # the bound for a 30 × 30 map of 1,000 steps


def main() -> None:
    args = parse_args(__doc__)
    header("bench_theory")
    report = Report()
    cfg = NQM(dim=100, steps=10_000) if not args.quick else NQM(dim=50, steps=2000)
    samples = 200 if args.quick else 1000
    repeats = args.repeats or 3
    print(f"# model: {cfg}; Monte Carlo: {samples} runs")

    curves = exact_curves(cfg)                          # warm-up (and the curves checked below)
    mc, slow = None, {}

    def simulate():
        nonlocal mc
        mc = monte_carlo(cfg, samples=samples, seed=0, bands=False)

    with threadpool_limits(limits=1, user_api="blas"):
        times = alternate({"exact": lambda: exact_curves(cfg), "monte_carlo": simulate}, repeats, warmup=0)
        for K in (1, 5000):   # context: the slowest switch periods of the page (many periods; long tables)
            k_cfg = replace(cfg, switch_every=min(K, cfg.steps))
            slow[k_cfg.switch_every] = alternate({"k": lambda c=k_cfg: exact_curves(c)}, repeats)["k"]
    default_threads = alternate({"exact": lambda: exact_curves(cfg)}, repeats)["exact"]
    worst = max(np.nanmax(np.abs(mc.mean[s][1:] - curves.total(s)[1:]) / mc.stderr[s][1:]) for s in SERIES)
    print(f"# agreement: max over steps and series of |Monte-Carlo mean − exact| / standard error = {worst:.2f}")

    report.time("exact_curves_3_methods", times["exact"])
    report.time(f"monte_carlo_{samples}_runs", times["monte_carlo"])
    report.time("exact_curves_3_methods_default_blas_threads", default_threads)
    for K, seconds in slow.items():
        report.time(f"exact_curves_K{K}", seconds)
    exact = median(times["exact"])
    if not args.quick:
        report.ratio("exact_seconds_over_0.2s_bound", exact / EXACT_BOUND_S, 1.0)
    report.ratio(f"exact_vs_monte_carlo_{samples}", exact / median(times["monte_carlo"]), 0.1)
    map_ratios(report, args.quick, repeats)
    report.finish(args.check)


def map_ratios(report: Report, quick: bool, repeats: int) -> None:
    """The 30 × 30 map against its bound and against one exact_curves call per cell."""
    size, base = (10, NQM(steps=200)) if quick else (30, NQM(steps=1000))
    grid = default_map(base, size)
    sample = [replace(base, alpha=float(grid.alpha[(3 * j) % size, j]), switch_every=int(k))
              for j, k in enumerate(grid.switch_every)]
    with threadpool_limits(limits=1, user_api="blas"):
        times = alternate({"map": lambda: default_map(base, size),
                           "singles": lambda: [exact_curves(c) for c in sample]}, repeats)
    scaled = [t * size * size / len(sample) for t in times["singles"]]
    whole, singles = median(times["map"]), median(scaled)
    report.time(f"theory_map_{size}x{size}_{base.steps}_steps", times["map"])
    report.time(f"exact_curves_{size * size}_singles_estimated", scaled)
    if not quick:
        report.ratio("theory_map_seconds_over_2s_bound", whole / MAP_BOUND_S, 1.0)
    report.ratio(f"theory_map_vs_{size * size}_singles", whole / singles, 0.1)


if __name__ == "__main__":
    main()
