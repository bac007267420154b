"""The measured map: where does SEMA beat EMA and SGD over a grid of α × switch interval?

All cells train in ONE run of the engine (``training.Trainer``): every seed's SGD, its EMA at
each α and its SEMA at each (α, K) are rows of the same stacked network, so every method of a
seed starts from the same weights and sees the same batches.  SGD depends on neither α nor K
and EMA not on K, so a 5×5 grid with 8 seeds is 8 + 40 + 200 = 248 runs, not 5·5·8·3 = 600.

Per cell the per-seed differences SEMA − EMA and SEMA − SGD (final test accuracy; epochs to
reach a target, with the sign chosen so that positive means SEMA is faster) get a 95 % paired
t interval (``stats.paired_t``).  A diverged run counts at chance accuracy (its weights are
no longer numbers, so it predicts nothing); a run that never reaches the target counts as
reaching it one epoch after the end (a censored value, so "faster" is a lower bound).
"""
from __future__ import annotations

from collections.abc import Callable
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from torch import nn

from .stats import PairedInterval, paired_t
from .training import Data, Trainer, TrainConfig, Variant

COMPARISONS = {  # name -> (what is compared, the method SEMA is compared with)
    "acc_vs_ema": ("final test accuracy", "ema"),
    "acc_vs_sgd": ("final test accuracy", "sgd"),
    "speed_vs_ema": ("epochs to the target (saved)", "ema"),
    "speed_vs_sgd": ("epochs to the target (saved)", "sgd"),
}


def ema_name(alpha: float) -> str:
    return f"ema α={alpha:g}"


def sema_name(alpha: float, switch_epochs: int) -> str:
    return f"sema α={alpha:g} K={switch_epochs}"


def map_config(base: TrainConfig, alphas, switch_epochs, seeds) -> TrainConfig:
    """``base`` with one SGD, one EMA per α and one SEMA per (α, K) as variants of one run."""
    variants = {ema_name(a): Variant("ema", ema_momentum=a) for a in alphas}
    variants |= {sema_name(a, k): Variant("sema", ema_momentum=a, switch_epochs=k)
                 for a in alphas for k in switch_epochs}
    return replace(base, methods=("sgd", *variants), seeds=tuple(seeds), variants=variants, grid_resolution=0)


@dataclass
class MeasuredMap:
    """Paired SEMA effects per (α, K) cell, with the per-run numbers they come from."""

    alphas: tuple[float, ...]             # rows
    switch_epochs: tuple[int, ...]        # columns (epochs between switches)
    seeds: tuple[int, ...]
    target: float                         # test accuracy of the epochs-to-target comparison
    runs: pd.DataFrame                    # one row per run: name, seed, final_acc, epochs_to_target, diverged
    cells: dict[str, list[list[PairedInterval]]]   # comparison -> rows × columns of intervals
    seconds: float                        # wall time of the training

    def grid(self, comparison: str, what: str = "mean") -> np.ndarray:
        """(rows, columns) of the intervals' mean, low or high."""
        return np.array([[getattr(ci, what) for ci in row] for row in self.cells[comparison]])

    def significant(self, comparison: str) -> np.ndarray:
        """Cells whose 95 % interval excludes 0."""
        return np.array([[ci.excludes_zero for ci in row] for row in self.cells[comparison]])

    def frame(self) -> pd.DataFrame:
        """One row per (cell, comparison): α, K, mean, low, high, seeds, excludes zero."""
        rows = []
        for name, grid in self.cells.items():
            for alpha, row in zip(self.alphas, grid):
                for k, ci in zip(self.switch_epochs, row):
                    rows.append({"alpha": alpha, "switch_epochs": k, "comparison": name, "mean": ci.mean,
                                 "low": ci.low, "high": ci.high, "seeds": ci.n, "excludes_zero": ci.excludes_zero,
                                 "interval": ci.method})
        return pd.DataFrame(rows)


def run_outcomes(history: pd.DataFrame, epochs: int, target: float, n_classes: int) -> pd.DataFrame:
    """Per run (method name, seed): final test accuracy (chance if diverged) and epochs to `target`
    (epochs + 1 if never)."""
    last = history.sort_values("epoch").groupby(["method", "seed"], sort=False).tail(1).set_index(["method", "seed"])
    hit = history[history["test_acc"] >= target].groupby(["method", "seed"])["epoch"].min()
    out = pd.DataFrame({"diverged": last["diverged"].astype(bool)})
    out["final_acc"] = np.where(out["diverged"], 1 / n_classes, last["test_acc"])
    out["epochs_to_target"] = hit.reindex(out.index).fillna(epochs + 1).astype(float)
    return out.reset_index().rename(columns={"method": "name"})


def paired_cells(runs: pd.DataFrame, alphas, switch_epochs, seeds) -> dict[str, list[list[PairedInterval]]]:
    """The four paired comparisons of every cell (seeds in the same order on both sides)."""
    table = runs.set_index(["name", "seed"])

    def values(name: str, column: str) -> np.ndarray:
        return table.loc[[(name, s) for s in seeds], column].to_numpy(dtype=float)

    cells: dict[str, list[list[PairedInterval]]] = {name: [] for name in COMPARISONS}
    for a in alphas:
        for name in cells:
            cells[name].append([])
        for k in switch_epochs:
            sema = sema_name(a, k)
            for name, (_, other) in COMPARISONS.items():
                other_name = ema_name(a) if other == "ema" else "sgd"
                if name.startswith("acc"):
                    diff = values(sema, "final_acc") - values(other_name, "final_acc")
                else:   # epochs saved: positive means SEMA gets there first
                    diff = values(other_name, "epochs_to_target") - values(sema, "epochs_to_target")
                cells[name][-1].append(paired_t(diff))
    return cells


def measured_map(data: Data, model_fn: Callable[[], nn.Module], base: TrainConfig, alphas, switch_epochs,
                 seeds, target: float, progress: Callable[[float], None] | None = None) -> MeasuredMap:
    """Train every cell of the grid in one engine run and compare the methods per seed.

    ``progress(fraction)`` is called after every epoch (a page's progress bar).
    """
    alphas, switch_epochs, seeds = tuple(alphas), tuple(int(k) for k in switch_epochs), tuple(seeds)
    if len(seeds) < 2:
        raise ValueError("a paired interval needs at least 2 seeds")
    config = map_config(base, alphas, switch_epochs, seeds)
    start = time.perf_counter()
    trainer = Trainer(data, model_fn, config)
    while not trainer.done:
        trainer.run_epoch()
        if progress is not None:
            progress(trainer.epoch / config.epochs)
    seconds = time.perf_counter() - start
    runs = run_outcomes(trainer.frame(), config.epochs, target, data.n_classes)
    cells = paired_cells(runs, alphas, switch_epochs, seeds)
    return MeasuredMap(alphas, switch_epochs, seeds, target, runs, cells, seconds)


def cell_count(alphas, switch_epochs, seeds) -> int:
    """How many networks the map trains: SGD, one EMA per α and one SEMA per (α, K), per seed."""
    return len(seeds) * (1 + len(alphas) * (1 + len(switch_epochs)))


__all__ = ["COMPARISONS", "MeasuredMap", "cell_count", "ema_name", "map_config", "measured_map", "paired_cells",
           "run_outcomes", "sema_name"]
