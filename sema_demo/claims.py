"""Does SEMA deliver?  The paper's claims, each measured and judged by a stated rule.

    report = run_claims(quick=True)                 # trains, measures, judges
    write_report(report, Path("docs/claims"))       # claims.json + claims.md

Every row compares SEMA with one other method on the same seeds (same initial weights and
batches), as per-seed paired effects: their mean and a 95 % paired t interval.  The sign of
``effect`` is chosen so that a positive number favours the paper.  A verdict is computed from
the interval, never typed in:

- superiority (claims 1–6): *supported* if the interval lies above 0 and not entirely inside
  ±margin; *not supported* if it lies below 0 or entirely inside ±margin (an effect too small
  to matter); *inconclusive* otherwise;
- no extra cost (claim 7): *supported* if the interval lies above −margin (any extra cost is
  negligible); *not supported* if it lies entirely below −margin; *inconclusive* otherwise.

Settings: the Decision boundaries page's default, and a paper-like one (momentum SGD with a
cosine schedule, α close to 1 with the linear warm-up of the official configs, a switch every
epoch).  The measures reuse the training engine, ``sharpness`` (λ_max, trace, width, depth)
and the engine's decision grids.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import __version__
from .averaging import EMA, SwitchEMA
from .datasets.toy import toy_data
from .models import mlp
from .sharpness import LossSurface, SharpnessSettings, measure
from .stats import PairedInterval, paired_t
from .training import Trainer, TrainConfig, batch_order

VERDICTS = ("supported", "not supported", "inconclusive")
COMMAND = "sema-demo claims --out docs/claims"
QUICK_COMMAND = "sema-demo claims --quick --out DIR"
GRID = 60                                    # decision-grid resolution for the smoothness measures
SEPARATES = 0.75                             # smoothness only of networks at least this accurate
SHARPNESS = SharpnessSettings(n_directions=2, steps_1d=21, max_hvps=30, hutchinson_samples=8, n_perturbations=4)


# ------------------------------------------------------------------------------ rules

def superiority_verdict(low: float, high: float, margin: float) -> str:
    """The rule of claims 1–6 (see the module docstring)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    if high < 0 or (-margin <= low and high <= margin):
        return "not supported"
    return "supported" if low > 0 else "inconclusive"


def equivalence_verdict(low: float, high: float, margin: float) -> str:
    """The rule of claim 7 (see the module docstring)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    if low >= -margin:
        return "supported"
    return "not supported" if high < -margin else "inconclusive"


def superiority_rule(margin: str) -> str:
    return (f"supported if the 95 % CI of the paired effect lies above 0 (and not entirely within ±{margin}); "
            f"not supported if it lies below 0 or entirely within ±{margin} (negligible); inconclusive otherwise")


def equivalence_rule(margin: str) -> str:
    return (f"supported if the 95 % CI of the effect (−extra cost) lies above −{margin}; not supported if it "
            f"lies entirely below −{margin}; inconclusive otherwise")


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class Setting:
    """One training setting measured for the scoreboard (toy 2D data, an MLP)."""

    key: str                      # short id used in row ids
    title: str                    # what the report says
    dataset: str = "moons"
    size: int = 800
    noise: float = 0.3
    hidden: tuple[int, ...] = (32, 32)
    activation: str = "relu"
    optimizer: str = "momentum"
    lr: float = 0.3
    schedule: str = "constant"
    batch_size: int = 16
    epochs: int = 40
    alpha: float = 0.95
    switch_epochs: int = 1
    warmup: str | None = None
    target: float = 0.95          # test accuracy for "epochs to reach"

    def config(self, seeds: tuple[int, ...]) -> TrainConfig:
        return TrainConfig(methods=("sgd", "ema", "sema"), seeds=seeds, epochs=self.epochs,
                           batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr, schedule=self.schedule,
                           ema_momentum=self.alpha, ema_warmup=self.warmup, switch_epochs=self.switch_epochs,
                           grid_resolution=GRID, device="cpu")

    def model_fn(self):
        return partial(mlp, 2, self.hidden, 2, self.activation)


TOY_DEFAULT = Setting("toy", "Decision boundaries default: moons (800 points, noise 0.3), MLP 2-32-32-2 ReLU, "
                             "momentum SGD lr 0.3, batch 16, 40 epochs, α = 0.95, a switch every epoch")
PAPER_LIKE = Setting("paper", "paper-like: the same data and net, momentum SGD lr 0.1 with a cosine schedule, "
                              "α = 0.998 (horizon ≈ 12 epochs of 40 steps) with the linear warm-up of the "
                              "official configs, a switch every epoch",
                     lr=0.1, schedule="cosine", alpha=0.998, warmup="linear")


@dataclass(frozen=True)
class Budget:
    seeds: tuple[int, ...]
    epochs: int | None            # None: each setting's own
    cost_repeats: int             # alternating timing repeats of claim 7


FULL = Budget(seeds=tuple(range(20)), epochs=None, cost_repeats=40)
QUICK = Budget(seeds=tuple(range(5)), epochs=20, cost_repeats=5)     # CI: within 5 min on a busy 2-core box


# ---------------------------------------------------------------------------- measures

def smoothness(probs: np.ndarray, extent: tuple[float, float, float, float]) -> tuple[float, float]:
    """(mean |∇p|, length of the p = 0.5 contour) of P(class 1) on a grid over `extent`.

    The gradient is a central finite difference on the grid; the contour is traced by
    contourpy (matplotlib's own contouring), its length summed over all pieces.
    """
    import contourpy

    xmin, xmax, ymin, ymax = extent
    p = probs[..., 1] if probs.ndim == 3 else probs
    ny, nx = p.shape
    xs, ys = np.linspace(xmin, xmax, nx), np.linspace(ymin, ymax, ny)
    gy, gx = np.gradient(p, ys, xs)
    lines = contourpy.contour_generator(xs, ys, p).lines(0.5)
    length = sum(float(np.linalg.norm(np.diff(line, axis=0), axis=1).sum()) for line in lines)
    return float(np.hypot(gx, gy).mean()), length


@dataclass
class SettingResult:
    """Per (method, seed) numbers of one setting, the raw material of its rows."""

    setting: Setting
    seeds: tuple[int, ...]
    per_run: pd.DataFrame         # method, seed, final_acc, epochs_to_target, depth, lambda_max, trace, width, …


def measure_setting(setting: Setting, budget: Budget, progress: Callable[[float, str], None]) -> SettingResult:
    """Train SGD, EMA and SEMA on every seed, then measure each final network."""
    if budget.epochs is not None:
        setting = replace(setting, epochs=budget.epochs)
    data = toy_data(setting.dataset, setting.size, setting.noise, 0.2)
    trainer = Trainer(data, setting.model_fn(), setting.config(budget.seeds))
    while not trainer.done:
        trainer.run_epoch()
        progress(0.5 * trainer.epoch / setting.epochs, f"{setting.key}: epoch {trainer.epoch}/{setting.epochs}")
    history = trainer.frame()
    last = history.sort_values("epoch").groupby(["method", "seed"]).tail(1).set_index(["method", "seed"])
    reached = history[history.test_acc >= setting.target].groupby(["method", "seed"]).epoch.min()
    grids, models = trainer.grids, trainer.models()
    rows = []
    for i, ((method, seed), model) in enumerate(models.items()):
        progress(0.5 + 0.5 * i / len(models), f"{setting.key}: measuring {method} seed {seed}")
        diverged = bool(last.loc[(method, seed), "diverged"])
        row = {"method": method, "seed": seed, "diverged": diverged,
               "final_acc": 0.5 if diverged else float(last.loc[(method, seed), "test_acc"]),
               "epochs_to_target": float(reached.get((method, seed), setting.epochs + 1))}
        if not diverged:
            m = measure(LossSurface(model, trainer.x_train, trainer.y_train), SHARPNESS, with_2d=False)
            row |= {"depth": m.depth, "lambda_max": m.top_eigenvalue.value, "trace": m.trace.value,
                    "width": m.width.radius}
            if row["final_acc"] >= SEPARATES:   # a collapsed network (a constant guess) is not "smooth"
                row["gradient_norm"], row["contour_length"] = smoothness(grids[(method, seed)], trainer.extent)
        rows.append(row)
    return SettingResult(setting, budget.seeds, pd.DataFrame(rows))


COST_EPOCHS = 10                  # one timed unit of claim 7: long enough (≈ 0.1 s) to rise above scheduler jitter


def step_cost(repeats: int, setting: Setting = TOY_DEFAULT, epochs: int = COST_EPOCHS) -> dict[str, list[float]]:
    """Seconds of `epochs` epochs of real training steps (torch.optim + the library's averager) per
    method, timed alternately SGD, EMA, SEMA, … after a warm-up; SEMA switches at every epoch end."""
    data = toy_data(setting.dataset, setting.size, setting.noise, 0.2)
    x, y = data.x_train, data.y_train
    order = batch_order(len(x), 0, 0).split(setting.batch_size)

    def epoch(method: str) -> float:
        torch.manual_seed(0)
        model = setting.model_fn()()
        optimizer = torch.optim.SGD(model.parameters(), lr=setting.lr, momentum=0.9)
        averager = None if method == "sgd" else (EMA if method == "ema" else SwitchEMA)(model, momentum=setting.alpha)
        start = time.perf_counter()
        for _ in range(epochs):
            for idx in order:
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if averager is not None:
                    averager.update()
            if method == "sema":
                averager.switch()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {m: [] for m in ("sgd", "ema", "sema")}
    for r in range(repeats + 1):
        for m in times:
            seconds = epoch(m)
            if r:                                  # the first round is the warm-up
                times[m].append(seconds)
    return times


# ------------------------------------------------------------------------------- rows

@dataclass
class Claim:
    """One row of the scoreboard."""

    id: str
    claim: str
    setting: str
    measure: str
    effect: float
    ci: list[float]
    seeds: int
    verdict: str
    rule: str
    page: str
    interval: str
    values: dict[str, float]      # the means of the two sides, for context


def _paired(per_run: pd.DataFrame, column: str, a: str, b: str, seeds, relative: bool) -> tuple[PairedInterval, dict]:
    """Per-seed (b − a) of `column`, divided by b's mean over seeds when `relative` (a per-seed
    denominator explodes when one run's value is near 0): positive when a is lower."""
    table = per_run.set_index(["method", "seed"])[column]
    va = np.array([table.get((a, s), np.nan) for s in seeds], dtype=float)
    vb = np.array([table.get((b, s), np.nan) for s in seeds], dtype=float)
    diff = (vb - va) / np.nanmean(vb) if relative else vb - va
    return paired_t(diff), {a: float(np.nanmean(va)), b: float(np.nanmean(vb))}


def _row(id_: str, claim: str, setting: Setting, what: str, ci: PairedInterval, values: dict, rule: str,
         verdict: str, page: str) -> Claim:
    return Claim(id_, claim, setting.title, what, ci.mean, [ci.low, ci.high], ci.n, verdict, rule, page, ci.method,
                 values)


def setting_rows(result: SettingResult) -> list[Claim]:
    """Claims 1–6 of one setting."""
    s, runs, seeds, k = result.setting, result.per_run, result.seeds, result.setting.key
    rows = []

    def higher_is_better(id_, claim, what, column, other, margin, margin_text, page):
        ci, values = _paired(runs, column, other, "sema", seeds, relative=False)   # SEMA − other
        rows.append(_row(id_, claim, s, what, ci, values, superiority_rule(margin_text),
                         superiority_verdict(ci.low, ci.high, margin), page))

    def lower_is_better(id_, claim, what, column, other, page):
        ci, values = _paired(runs, column, "sema", other, seeds, relative=True)    # (other − SEMA) / other
        rows.append(_row(id_, claim, s, what, ci, values, superiority_rule("5 %"),
                         superiority_verdict(ci.low, ci.high, 0.05), page))

    ci, values = _paired(runs, "epochs_to_target", "sema", "sgd", seeds, relative=False)      # SGD − SEMA
    rows.append(_row(f"1-{k}", "faster convergence (than SGD)", s,
                     f"epochs to {s.target:.0%} test accuracy saved by SEMA (SGD − SEMA; never = epochs + 1)",
                     ci, values, superiority_rule("1 epoch"), superiority_verdict(ci.low, ci.high, 1.0), "toy"))
    higher_is_better(f"2-{k}", "better final accuracy than SGD", "final test accuracy, SEMA − SGD "
                     "(a diverged run counts at chance)", "final_acc", "sgd", 0.005, "0.5 points", "toy")
    higher_is_better(f"3-{k}", "better final accuracy than EMA", "final test accuracy, SEMA − EMA", "final_acc",
                     "ema", 0.005, "0.5 points", "toy")
    for id_, column, label in (("4a", "lambda_max", "λ_max (top Hessian eigenvalue)"), ("4b", "trace", "Hessian trace")):
        lower_is_better(f"{id_}-{k}", "flatter than SGD", f"{label} of the final weights, (SGD − SEMA) ÷ mean SGD",
                        column, "sgd", "landscape")
    ci, values = _paired(runs, "width", "sgd", "sema", seeds, relative=True)        # (SEMA − SGD) ÷ mean SEMA
    rows.append(_row(f"4c-{k}", "flatter than SGD", s, "width (radius where the loss rises by 0.1), "
                     "(SEMA − SGD) ÷ mean SEMA", ci, values, superiority_rule("5 %"),
                     superiority_verdict(ci.low, ci.high, 0.05), "landscape"))
    lower_is_better(f"5-{k}", "deeper than EMA", "training loss at the final weights, (EMA − SEMA) ÷ mean EMA", "depth",
                    "ema", "landscape")
    lower_is_better(f"6a-{k}", "smoother decision boundaries (than SGD)",
                    "mean input-gradient norm |∇p| of the predicted probability on a 60×60 grid, (SGD − SEMA) ÷ mean "
                    "SGD (seeds where both nets reach 75 % test accuracy)",
                    "gradient_norm", "sgd", "toy")
    lower_is_better(f"6b-{k}", "smoother decision boundaries (than SGD)",
                    "length of the p = 0.5 contour, (SGD − SEMA) ÷ mean SGD (seeds where both nets reach 75 % test "
                    "accuracy)", "contour_length", "sgd", "toy")
    return rows


def cost_row(times: dict[str, list[float]]) -> Claim:
    """Claim 7: SEMA's epoch time against EMA's, paired by timing round."""
    sema, ema, sgd = (np.array(times[m]) for m in ("sema", "ema", "sgd"))
    ci = paired_t(-(sema - ema) / ema)
    values = {"sema_s": float(np.median(sema)), "ema_s": float(np.median(ema)), "sgd_s": float(np.median(sgd)),
              "sema_over_sgd": float(np.median(sema / sgd))}
    row = _row("7", "no extra cost (over EMA)", TOY_DEFAULT, f"−(SEMA − EMA) / EMA seconds per {COST_EPOCHS} epochs of real "
               "training steps (torch.optim.SGD + the library's averagers), paired by timing round", ci, values,
               equivalence_rule("5 %"), equivalence_verdict(ci.low, ci.high, 0.05), "toy")
    row.seeds = ci.n
    return row


# ----------------------------------------------------------------------------- report

def versions() -> dict:
    return {"sema_demo": __version__, "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
            "python": platform.python_version(), "device": "cpu", "machine": f"{platform.machine()} "
            f"{os.cpu_count()} cores", "torch_threads": torch.get_num_threads()}


def run_claims(quick: bool = False, progress: Callable[[float, str], None] | None = None,
               settings: tuple[Setting, ...] = (TOY_DEFAULT, PAPER_LIKE)) -> dict:
    """Measure every claim; returns the report as a JSON-ready dict."""
    budget = QUICK if quick else FULL
    say = progress or (lambda fraction, text: None)
    start = time.perf_counter()
    # Claim 7 first: a few seconds of timing, taken while the machine is as quiet as whoever started
    # the command left it, not after an hour of training when something else may have started.
    say(0.0, "timing the averagers (claim 7)")
    rows: list[Claim] = [cost_row(step_cost(budget.cost_repeats))]
    share = 0.95 / len(settings)
    for i, setting in enumerate(settings):
        result = measure_setting(setting, budget, lambda f, t, i=i: say(0.05 + share * (i + f), t))
        rows += setting_rows(result)
    rows.sort(key=lambda r: (r.id.split("-")[0], r.id))
    say(1.0, "done")
    used = {s.key: asdict(replace(s, epochs=budget.epochs or s.epochs)) for s in settings}
    return {"claims": [asdict(r) for r in rows], "versions": versions(), "wall_s": time.perf_counter() - start,
            "quick": quick, "seeds": list(budget.seeds), "settings": used,
            "command": QUICK_COMMAND if quick else COMMAND, "interval": "paired t, 95 %",
            "effect_sign": "positive favours the paper's claim"}


def report_markdown(report: dict) -> str:
    """claims.md: the scoreboard as a table, with the rules and the command that wrote it."""
    lines = ["# Does SEMA deliver? The paper's claims, measured", "",
             f"Written by `{report['command']}` in {report['wall_s']:.0f} s "
             f"(sema_demo {report['versions']['sema_demo']}, torch {report['versions']['torch']}, "
             f"{report['versions']['machine']}); seeds {report['seeds']}. Do not edit by hand.", "",
             "Effects are paired per seed (same initial weights and batches), mean with a 95 % paired t "
             "interval; a positive effect favours the paper.", "",
             "| id | claim | measure | effect [95 % CI] | seeds | verdict |", "|---|---|---|---|---|---|"]
    for c in report["claims"]:
        low, high = c["ci"]
        lines.append(f"| {c['id']} | {c['claim']} | {c['measure']} | {c['effect']:+.3g} [{low:+.3g}, {high:+.3g}] "
                     f"| {c['seeds']} | **{c['verdict']}** |")
    lines += ["", "## Settings", ""]
    for key, s in report["settings"].items():
        title = next((c["setting"] for c in report["claims"] if c["id"].endswith(f"-{key}")), key)
        lines.append(f"- `{key}`: {title} (epochs used: {s['epochs']}).")
    lines += ["", "## Rules", ""]
    for rule in dict.fromkeys(c["rule"] for c in report["claims"]):
        lines.append(f"- {rule}")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> list[Path]:
    """claims.json (strict JSON: null for a non-finite number) and claims.md in `out`, written whole
    or not at all (sema_demo/outputs.py)."""
    from .outputs import json_text, write_outputs

    return write_outputs(out, {"claims.json": lambda path: path.write_text(json_text(report), encoding="utf-8"),
                               "claims.md": lambda path: path.write_text(report_markdown(report), encoding="utf-8")})


def load_report(path: Path) -> dict | None:
    """The report in `path` (claims.json), or None when it is missing or not a report."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and isinstance(report.get("claims"), list) else None


REQUIRED = ("id", "claim", "setting", "effect", "ci", "seeds", "verdict", "rule", "page")


def check_report(report: dict) -> list[str]:
    """Problems with a report's shape (empty when well formed), and verdicts that do not follow
    from their own numbers."""
    problems = []
    for key in ("claims", "versions", "wall_s"):
        if key not in report:
            problems.append(f"missing {key!r}")
    for c in report.get("claims", []):
        missing = [k for k in REQUIRED if k not in c]
        if missing:
            problems.append(f"claim {c.get('id')} lacks {missing}")
            continue
        if c["verdict"] not in VERDICTS:
            problems.append(f"claim {c['id']}: verdict {c['verdict']!r}")
        if not (isinstance(c["ci"], list) and len(c["ci"]) == 2):
            problems.append(f"claim {c['id']}: ci must be [low, high]")
    return problems
