"""What a training history says, per seed, and the sentences a page may write from it.

A page asks one *question* of a run, the one its active preset is about:

    "accuracy"    which weights end with the best test accuracy (the default)
    "speed"       which reach the target test accuracy in fewer epochs
    "stability"   which fall least below their own best (a collapse late in training)
    "identity"    α = 0: φ equals θ after every step, so EMA and SEMA must equal SGD

Every comparison is paired (the methods of one seed share weights and batches) and goes through
``stats.verdict``: the mean per-seed difference with its 95 % paired t interval, the number of
seeds, and "too few seeds to tell" below ``stats.MIN_SEEDS_TO_TELL``.  Nothing here is typed in:
the words follow the numbers, whoever wins.

Conventions, stated wherever they are used:
- a diverged run counts at chance accuracy (``chance``; dropped when it is not given);
- a run that never reaches the target counts as one epoch after the last trained one;
- a "fall" is the largest drop of test accuracy below its own best so far (points).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..stats import MIN_SEEDS_TO_TELL, Verdict, mean_std, verdict
from .style import METHOD_NAMES

QUESTIONS = ("accuracy", "speed", "stability", "identity")
FALL_POINTS = 10.0         # a seed "fell" when its test accuracy dropped this far below its own best (points)
SAME_POINTS = 0.05         # identity: gaps below this (points) are rounding


def _name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def methods_of(history: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(history["method"].to_numpy(object)))     # (iterating a str column is slow)


def seeds_of(history: pd.DataFrame) -> list[int]:
    return sorted(int(s) for s in dict.fromkeys(history["seed"].to_numpy()))


def _runs(history: pd.DataFrame):
    """(method, seed, run) per run in order of appearance; ``run`` maps ``epoch``, ``test_acc`` and
    ``diverged`` to that run's numpy arrays, in epoch order.

    Arrays, not sub-frames: a live page asks this of its history several times per tick, and
    slicing 15 DataFrames out of a groupby costs ten times the arithmetic done on them."""
    if history.empty:
        return
    order = np.argsort(history["epoch"].to_numpy(), kind="stable")
    columns = {c: history[c].to_numpy()[order] for c in ("epoch", "test_acc")}
    columns["diverged"] = history["diverged"].to_numpy().astype(bool)[order]
    rows: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(history["method"].to_numpy(object)[order], history["seed"].to_numpy()[order])):
        rows.setdefault(key, []).append(i)
    for (method, seed), at in rows.items():
        yield method, int(seed), {c: v[at] for c, v in columns.items()}


def final_accuracy(history: pd.DataFrame, chance: float | None = None) -> pd.DataFrame:
    """Final test accuracy in points, methods × seeds (a diverged run at ``chance``, else NaN)."""
    out = {}
    for method, seed, run in _runs(history):
        if run["diverged"].any():
            value = math.nan if chance is None else 100 * chance
        else:
            value = 100 * float(run["test_acc"][-1])
        out.setdefault(method, {})[seed] = value
    return pd.DataFrame(out).T.reindex(methods_of(history))


def epochs_to_target(history: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(epochs, reached, never_value): first epoch at ``threshold`` test accuracy, methods × seeds;
    ``reached`` says which did; a run that never did counts as ``never_value`` (last epoch + 1)."""
    never = int(history["epoch"].max()) + 1 if len(history) else 1
    epochs, reached = {}, {}
    for method, seed, run in _runs(history):
        hit = run["epoch"][run["test_acc"] >= threshold]
        reached.setdefault(method, {})[seed] = bool(len(hit))
        epochs.setdefault(method, {})[seed] = float(hit[0]) if len(hit) else float(never)
    order = methods_of(history)
    return pd.DataFrame(epochs).T.reindex(order), pd.DataFrame(reached).T.reindex(order), never


def largest_fall(history: pd.DataFrame, chance: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fall, epoch): per method × seed, the largest drop of test accuracy below its own best so
    far, in points, and the epoch where that drop was deepest.  A diverged run falls to ``chance``."""
    falls, where = {}, {}
    for method, seed, run in _runs(history):
        acc = 100 * run["test_acc"].astype(float)
        epochs = run["epoch"]
        if run["diverged"].any() and chance is not None:
            acc = np.where(run["diverged"], 100 * chance, acc)
        ok = np.isfinite(acc)
        if not ok.any():
            falls.setdefault(method, {})[seed], where.setdefault(method, {})[seed] = math.nan, math.nan
            continue
        acc, epochs = acc[ok], epochs[ok]
        drop = np.maximum.accumulate(acc) - acc
        k = int(drop.argmax())
        falls.setdefault(method, {})[seed] = float(drop[k])
        where.setdefault(method, {})[seed] = float(epochs[k])
    order = methods_of(history)
    return pd.DataFrame(falls).T.reindex(order), pd.DataFrame(where).T.reindex(order)


def largest_gap(history: pd.DataFrame, methods=("sgd", "ema", "sema")) -> float:
    """The largest |difference| of test accuracy (points) between any two of ``methods``, over every
    epoch and seed (NaN with fewer than two of them)."""
    shown = [m for m in methods if m in set(history["method"])]
    if len(shown) < 2:
        return math.nan
    table = history[history["method"].isin(shown)].pivot_table(index=["seed", "epoch"], columns="method",
                                                               values="test_acc")
    return float(100 * (table.max(axis=1) - table.min(axis=1)).max())


# ----------------------------------------------------------------------------- comparisons

def focus_method(methods: list[str]) -> str | None:
    """The method every other one is compared with: SEMA where it runs."""
    return "sema" if "sema" in methods else (methods[0] if methods else None)


def comparisons(values: pd.DataFrame, higher_is_better: bool) -> dict[str, Verdict]:
    """SEMA (or the focus method) against every other method, paired over the common seeds."""
    methods = list(values.index)
    focus = focus_method(methods)
    out = {}
    for other in methods:
        if other != focus:
            out[other] = verdict(values.loc[focus].to_numpy(float), values.loc[other].to_numpy(float),
                                 higher_is_better=higher_is_better)
    return out


def _pts(v: float) -> str:
    return f"{v:.1f}"


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _verdict_lines(values: pd.DataFrame, higher_is_better: bool, what: str) -> list[str]:
    focus = focus_method(list(values.index))
    return [v.sentence(_name(focus), _name(other), what, digits=1)
            for other, v in comparisons(values, higher_is_better).items()]


def seeds_note(n: int) -> str:
    if n >= MIN_SEEDS_TO_TELL:
        return ""
    return (f"With {_seeds(n)} no difference is called real here (the rule needs at least "
            f"{MIN_SEEDS_TO_TELL}): raise *Seeds* to tell.")


def results_text(history: pd.DataFrame, threshold: float, question: str = "accuracy",
                 chance: float | None = None) -> str:
    """The computed sentences under a results table (markdown): the active question first, then
    each comparison with SEMA as a paired interval and its verdict (a list), the seeds always named."""
    if history.empty:
        return "No epoch has finished yet."
    if question == "identity":
        return identity_text(history)
    methods = methods_of(history)
    n = len(seeds_of(history))
    head: list[str] = []
    lines: list[str] = []
    notes: list[str] = []
    if question == "speed":
        head += [f"**The question here is speed:** epochs to reach {threshold:.0%} test accuracy.",
                 reach_text(history, threshold)]
        epochs, _, never = epochs_to_target(history, threshold)
        lines += _verdict_lines(epochs, False, f"epochs to {threshold:.0%}")
        notes.append(f"A seed that never reaches {threshold:.0%} counts as {never} epochs.")
    elif question == "stability":
        fall, _ = largest_fall(history, chance)
        head += ["**The question here is stability:** how far test accuracy falls below its own best.",
                 fall_text(history, chance)]
        lines += _verdict_lines(fall, False, "largest fall (points)")
    else:
        head.append("**The question here is the final test accuracy.**")
    lines += _verdict_lines(final_accuracy(history, chance), True, "final test accuracy (points)")
    if chance is not None and history["diverged"].astype(bool).any():
        notes.append(f"A diverged run counts at chance ({100 * chance:.0f} %).")
    if len(methods) > 1:
        notes.append(seeds_note(n))
    text = " ".join(head)
    if lines:
        text += "\n\n" + "\n".join(f"- {line}" for line in lines)
    notes = [x for x in notes if x]
    if notes:
        text += "\n\n" + " ".join(notes)
    return text


def reach_text(history: pd.DataFrame, threshold: float) -> str:
    """'Reached 95 % in: SGD 5 of 5 seeds (mean 6.8 epochs), SEMA 4 of 5 (27.8; seed 2 never).'"""
    epochs, reached, _ = epochs_to_target(history, threshold)
    bits = []
    for m in epochs.index:
        hit = reached.loc[m].fillna(False).astype(bool)
        total = int(reached.loc[m].notna().sum())
        got = epochs.loc[m][hit]
        bit = f"{_name(m)} {int(hit.sum())} of {total}"
        if len(got):
            bit += f" (mean {got.mean():.1f} epochs"
            missed = [str(s) for s in hit.index[~hit & reached.loc[m].notna()]]
            bit += f"; never: seed {', '.join(missed)})" if missed else ")"
        else:
            bit += " (never)"
        bits.append(bit)
    return f"Seeds that reached {threshold:.0%}: " + "; ".join(bits) + "."


def fall_text(history: pd.DataFrame, chance: float | None = None) -> str:
    """'Seeds that fell more than 5 points below their best: SGD 1 of 5 (seed 3: 28.1 points, epoch 12) …'"""
    fall, where = largest_fall(history, chance)
    bits = []
    for m in fall.index:
        row = fall.loc[m].dropna()
        fell = row[row > FALL_POINTS]
        bit = f"{_name(m)} {len(fell)} of {len(row)}"
        if len(fell):
            worst = fell.idxmax()
            bit += f" (worst: seed {worst}, {_pts(fell[worst])} points by epoch {where.loc[m, worst]:.0f})"
        bits.append(bit)
    return f"Seeds whose test accuracy fell more than {FALL_POINTS:.0f} points below their own best: " + \
        "; ".join(bits) + "."


def identity_text(history: pd.DataFrame) -> str:
    gap = largest_gap(history)
    n = len(seeds_of(history))
    if math.isnan(gap):
        return "With α = 0, EMA and SEMA equal SGD: tick at least two of them to compare."
    same = gap < SAME_POINTS
    return (f"**The question here: with α = 0 (φ = θ after every step) are EMA and SEMA exactly SGD?** "
            f"The largest gap between them in test accuracy, over every epoch of {_seeds(n)}, is "
            f"{gap:.1f} points: " + ("they are the same run, as they must be." if same else
                                     "they differ, which α = 0 should not allow."))


# ----------------------------------------------------------------------------- what to notice

def notice_text(history: pd.DataFrame, question: str, threshold: float, *, alpha: float,
                switch_steps: int | None, chance: float | None = None, so_far: bool = False) -> str:
    """'What to notice' for a live-training page, written from the current settings and numbers.

    ``switch_steps``: optimizer steps between two SEMA switches (None when unknown); ``so_far``:
    the run is still training, so the measured part is worded as "so far"."""
    parts: list[str] = []
    here = f"So far (epoch {int(history['epoch'].max())})" if so_far and len(history) else "In this run"
    if alpha == 0 or question == "identity":
        parts.append("**α = 0: no averaging.** φ is copied from θ after every step, so EMA and SEMA are "
                     "SGD itself and the three curves must lie on top of each other.")
        if not history.empty:
            gap = largest_gap(history)
            if not math.isnan(gap):
                parts.append(f"Measured: the largest gap is {gap:.1f} points.")
        return " ".join(parts)
    horizon = 1 / (1 - alpha)
    memory = f"α = {alpha:g} averages over ≈ {horizon:,.0f} steps"
    if switch_steps:
        memory += f"; SEMA copies φ back into θ every {switch_steps:,} steps"
        ratio = horizon / switch_steps
        if ratio > 1:
            memory += (f", so when φ is copied into θ it still remembers ≈ {ratio:.1f} switch intervals "
                       "back")
    parts.append(memory + ".")
    if history.empty:
        parts.append("Press ▶ to train; the notes below fill in from the numbers.")
        return " ".join(parts)
    n = len(seeds_of(history))
    if question == "stability":
        parts.append("**Look at** the test-accuracy curves: does a method fall below its own best?")
        fall, where = largest_fall(history, chance)
        fell = [(m, s, fall.loc[m, s]) for m in fall.index for s in fall.columns
                if pd.notna(fall.loc[m, s]) and fall.loc[m, s] > FALL_POINTS]
        if fell:
            m, s, v = max(fell, key=lambda t: t[2])
            parts.append(f"{here} the deepest fall is {_name(m)}'s in seed {s}: {_pts(v)} points below its best, by "
                         f"epoch {where.loc[m, s]:.0f}. Pick seed {s} under **Seed shown** to see it.")
            steady = [m for m in fall.index if (fall.loc[m].dropna() <= FALL_POINTS).all()]
            if steady:
                parts.append(f"{_list([_name(m) for m in steady])} fell at most {FALL_POINTS:.0f} points in every "
                             f"one of the {_seeds(n)}.")
        else:
            parts.append(f"{here} no method fell more than {FALL_POINTS:.0f} points below its best in any of "
                         f"the {_seeds(n)}.")
    elif question == "speed":
        parts.append(f"**Look at** the *Epochs to {threshold:.0%}* column and the rise of the curves.")
        epochs, reached, _ = epochs_to_target(history, threshold)
        means = {m: epochs.loc[m][reached.loc[m].fillna(False).astype(bool)].mean() for m in epochs.index}
        missing = [m for m in epochs.index if not reached.loc[m].fillna(False).astype(bool).all()]
        done = {m: v for m, v in means.items() if pd.notna(v) and m not in missing}
        if done:
            first = min(done, key=done.get)
            parts.append(f"{here}, of the methods that got there in every seed, {_name(first)} was first on average "
                         f"({done[first]:.1f} epochs).")
        if missing:
            parts.append(f"{_list([_name(m) for m in missing])} did not reach it in every seed.")
    else:
        finals = final_accuracy(history, chance)
        means = finals.mean(axis=1, skipna=True).dropna()
        if len(means):
            top = [m for m in means.index if means.max() - means[m] < SAME_POINTS]
            who = f"{_name(top[0])}'s" if len(top) == 1 else f"shared by {_list([_name(m) for m in top])}"
            parts.append(f"**Look at** the final test accuracy. {here} the highest mean is {who} "
                         f"({means.max():.1f} % over {_seeds(n)}); the list under the table says whether a lead "
                         "is larger than the seed noise.")
    return " ".join(parts)


def seed_label(history: pd.DataFrame, seed: int, chance: float | None = None) -> str:
    """'seed 3 · SGD fell 28 points' (its deepest fall above FALL_POINTS), for a seed picker."""
    if history.empty or seed not in seeds_of(history):
        return f"seed {seed}"
    fall, _ = largest_fall(history[history["seed"] == seed], chance)
    col = fall[seed].dropna() if seed in fall.columns else pd.Series(dtype=float)
    fell = col[col > FALL_POINTS]
    if not len(fell):
        return f"seed {seed}"
    m = fell.idxmax()
    return f"seed {seed} · {_name(m)} fell {_pts(fell[m])} points"


def mean_of(values: pd.DataFrame, method: str) -> float:
    return mean_std(values.loc[method].dropna())[0]
