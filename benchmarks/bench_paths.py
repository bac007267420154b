"""Benchmark: weight paths on their own loss surface (sema_demo.paths).

Set-ups (all in one place):
* toy: the Decision boundaries page's default — two moons (noise 0.3, 800 points, 20 % test), MLP
  2-32-32-2 ReLU, momentum SGD lr 0.3, batch 16, α = 0.95, 40 epochs, SGD/EMA/SEMA × 3 seeds;
* digits: the Image page's default network — small CNN width 16 (BatchNorm) on 50 Digits per class,
  batch 32, SGD/EMA/SEMA × 1 seed, 12 epochs of recording (2 trained for the surface).

    RATIO toy_surface_31x31_s            seconds for the 31×31 training-loss surface of seed 0 (plane
                                         through the three solutions, the 640 training points)   ≤ 1.0
    RATIO digits_surface_21x21_s         seconds for a 21×21 surface of the CNN on 500 images    ≤ 5.0
    RATIO toy_surface_flops_over_dense   achieved FLOP/s of the toy surface ÷ the FLOP/s of the same
                                         work as dense kernels (below), measured in the same run
    RATIO digits_surface_flops_over_mm   achieved FLOP/s of the CNN surface ÷ torch.mm FLOP/s on the
                                         costliest convolution's im2col shape                     ≥ 0.3 each
    RATIO toy_recording_overhead         epoch time with record_paths ÷ without (batched MLP path) ≤ 1.03
    RATIO digits_recording_overhead      the same on the per-run path (the CNN)                   ≤ 1.03

FLOPs are counted as 2·m·n·k for every Linear and 2·Cin·k²·Cout·H·W for every convolution of every
forward pass the grid needs (grid points × examples); nothing for activations, BatchNorm, pooling or
the loss.  The references run in the same process, on the same threads, after a warm-up.
The toy's reference is the surface's own work as plain dense kernels into preallocated buffers:
for each of its passes (points per pass × rows), a ``torch.mm`` per Linear — the thin 2→32 and
32→2 layers included — and an in-place ReLU per ReLU (for a Tanh network the faster of
``tanh_`` and ``2·sigmoid_ − 1``), timed alternately with the surface.  It replaced a bare
``torch.mm`` of the hidden layer's shape (printed as context): at these widths the surface is
bound by memory traffic — the 2-wide input and output layers do 4 FLOPs per element written,
the ReLUs none — not by the one square matmul, so a square mm's peak measured how far the
network's shape is from a matmul, not how much the evaluator wastes.
Recording overhead alternates an epoch of the recording trainer and of an identical plain one
(same seeds, same batches) after a warm-up epoch, 12 epochs of the 40-epoch schedule (toy) or 4 of
the 12 (digits), in each of 20 (toy) or 10 (digits) fresh pairs with the order swapped in every other
pair; the figure is the median of the pairs' ratios of median epoch times.  Fresh pairs, because two
identical plain trainers differ by where their memory landed: by up to ±1.5 % on the toy and ±4 % on
the CNN, as much as the recording costs, so one pair measured its own luck, and the medians of the
epochs pooled over 3–6 pairs moved by ±2 % from run to run.  The same measurement with both trainers
plain (its noise floor) and the pooled figure are printed beside it.  The surface includes building the
LossSurface, the plane and every point; the PCA and the projection are timed separately (context).
--quick: a 2-8-8-2 MLP, 11×11 on 160 points, 6 epochs; CNN width 4, 7×7 on 100 images, 4 epochs.
"""
from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.benchlib import (ACTIVATION_KERNELS, Report, alternate, dense_kernels, dense_pass, header,  # noqa: E402
                                 matmul_flops, median, parse_args)
from sema_demo.datasets import images as image_data  # noqa: E402
from sema_demo.datasets.toy import toy_data  # noqa: E402
from sema_demo.models import mlp, small_cnn  # noqa: E402
from sema_demo.paths import probe_subset, study_paths, surface_grid  # noqa: E402
from sema_demo.sharpness import LossSurface  # noqa: E402
from sema_demo.training import Trainer, TrainConfig  # noqa: E402


def forward_flops(model: torch.nn.Module, x1: torch.Tensor) -> tuple[int, tuple[int, int, int]]:
    """(matmul FLOPs of one forward pass of one example, (rows, k, n) of its costliest kernel per example)."""
    kernels: list[tuple[int, int, int]] = []     # (rows per example, k, n) of each kernel as an mm

    def record(module, _inputs, output):
        if isinstance(module, torch.nn.Linear):
            kernels.append((1, module.in_features, module.out_features))
        else:
            h, w = output.shape[-2:]
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            kernels.append((h * w, k, module.out_channels))

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    with torch.no_grad():
        model.eval()(x1)
    for hook in hooks:
        hook.remove()
    return sum(2 * r * k * n for r, k, n in kernels), max(kernels, key=lambda t: t[0] * t[1] * t[2])


def mm_flops(rows: int, k: int, n: int, repeats: int) -> float:
    """FLOP/s of torch.mm (rows, k) @ (k, n) into a preallocated buffer (median of ``repeats``)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(rows, k, generator=gen), torch.randn(k, n, generator=gen)
    out = torch.empty(rows, n)
    times = alternate({"mm": lambda: torch.mm(a, b, out=out)}, repeats, warmup=3)["mm"]
    return 2 * rows * k * n / median(times)


def surface_seconds(trainer: Trainer, x, y, resolution: int, repeats: int, warmup: int = 1,
                    references: dict | None = None) -> tuple[list[float], object, dict[str, float]]:
    """Seconds of each timed surface, the study, and each reference's median (timed alternately with it)."""
    models = trainer.models()
    study = study_paths(trainer.recorder, models, trainer.config.seeds[0], "solutions")
    model = models[("sgd", study.seed)]

    def run():
        return surface_grid(study, model, x, y, resolution)

    times = alternate({"surface": run, **(references or {})}, repeats, warmup=warmup)
    return times.pop("surface"), study, {name: median(t) for name, t in times.items()}


def repeated(fn, times: int):
    def run() -> None:
        for _ in range(times):
            fn()
    return run


def overhead(data, model_fn, config: TrainConfig, pairs: int, epochs: int,
             recording: bool = True) -> tuple[float, list[float], list[float]]:
    """(median over ``pairs`` fresh pairs of trainers of each pair's ratio of median epoch times,
    recording epochs, plain epochs).  Each pair alternates ``epochs`` epochs of its schedule after
    one warm-up epoch, and every other pair starts with the plain trainer.  ``recording=False``: both
    trainers plain, the noise floor of the same measurement."""
    ratios, record, plain = [], [], []
    for k in range(pairs):
        trainers = {"record": Trainer(data, model_fn, TrainConfig(**{**vars(config), "record_paths": recording})),
                    "plain": Trainer(data, model_fn, TrainConfig(**{**vars(config), "record_paths": False}))}
        order = dict(sorted(trainers.items(), reverse=bool(k % 2)))
        times = alternate({name: t.run_epoch for name, t in order.items()}, epochs, warmup=1)
        ratios.append(median(times["record"]) / median(times["plain"]))
        record += times["record"]
        plain += times["plain"]
    return median(ratios), record, plain


def recording_overhead(report: Report, name: str, data, model_fn, config: TrainConfig, pairs: int,
                       epochs: int) -> None:
    ratio, record, plain = overhead(data, model_fn, config, pairs, epochs)
    floor, _, _ = overhead(data, model_fn, config, pairs, epochs, recording=False)
    report.time(f"{name}_epoch_recording", record)
    report.time(f"{name}_epoch_plain", plain)
    print(f"# {name}: the same measurement with both trainers plain (its noise floor) reads {floor:.4f}; "
          f"pooled epochs instead of per-pair ratios read {median(record) / median(plain):.4f}", flush=True)
    report.ratio(f"{name}_recording_overhead", ratio, 1.03)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    quick = args.quick
    repeats = args.repeats or (3 if quick else 7)
    header("bench_paths")
    report = Report()

    # ---- toy: the Decision boundaries default
    toy = toy_data("moons", 200 if quick else 800, 0.3, 0.2)
    toy_fn = partial(mlp, 2, (8, 8) if quick else (32, 32), 2, "relu")
    toy_config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1, 2), epochs=6 if quick else 40, batch_size=16,
                             optimizer="momentum", lr=0.3, ema_momentum=0.95, record_paths=True)
    trainer = Trainer(toy, toy_fn, toy_config)
    trainer.run()
    x, y = probe_subset(trainer.x_train, trainer.y_train)
    res = 11 if quick else 31
    start = time.perf_counter()
    study = study_paths(trainer.recorder, trainer.models(), 0, "pca")
    report.time("toy_pca_and_projection", time.perf_counter() - start)
    kernels = dense_kernels(toy_fn(), x[:1])
    per_pass = LossSurface(trainer.models()[("sgd", 0)], x, y).points_per_pass
    passes, rows = -(-res * res // per_pass), per_pass * len(x)
    activation = next(kind for kind, _, _ in kernels if kind != "mm")
    variants = list(ACTIVATION_KERNELS[activation])
    references = {**{f"dense {name}": repeated(dense_pass(kernels, rows, "cpu", k), passes)
                     for k, name in enumerate(variants)},
                  "dense_mm": repeated(dense_pass(kernels, rows, "cpu", None), passes)}
    times, study, ref_seconds = surface_seconds(trainer, x, y, res, repeats, references=references)
    report.time(f"toy_surface_{res}x{res}", times)
    seconds = median(times)
    flops, (_, k, n) = forward_flops(toy_fn(), x[:1])
    achieved = flops * len(x) * res * res / seconds
    dense_work = passes * matmul_flops(kernels, rows)
    dense = {name: dense_work / ref_seconds[f"dense {name}"] for name in variants}
    best = max(dense, key=dense.get)
    hidden_mm = mm_flops(rows, k, n, repeats * 5)
    print(f"# toy: {flops * len(x) * res * res / 1e9:.3g} GFLOP, {achieved / 1e9:.3g} GFLOP/s; the same work "
          f"({passes} passes of {rows} rows) as dense kernels "
          + ", ".join(f"{dense[name] / 1e9:.3g} GFLOP/s with {name}" for name in variants)
          + f" (the anchor: {best}), as dense torch.mm alone {dense_work / ref_seconds['dense_mm'] / 1e9:.3g} GFLOP/s; "
          f"torch.mm ({rows}, {k}) @ ({k}, {n}) alone {hidden_mm / 1e9:.3g} GFLOP/s "
          f"(the surface reaches {achieved / hidden_mm:.3g} of it)", flush=True)
    report.ratio(f"toy_surface_{res}x{res}_s", seconds, 1.0)
    report.ratio("toy_surface_flops_over_dense", achieved / dense[best], 0.3, ">=")
    recording_overhead(report, "toy", toy, toy_fn, toy_config, 2 if quick else 20, 3 if quick else 12)

    # ---- digits: the Image page's default CNN
    images = image_data.load_images("digits")
    data = image_data.make_data(images, 10 if quick else 50, 100, seed=0, device="cpu", augment=False)
    cnn_fn = partial(small_cnn, 1, 10, 4 if quick else 16)
    cnn_config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0,), epochs=2, batch_size=32, lr=0.05,
                             ema_momentum=0.9, record_paths=True, device="cpu")
    trainer = Trainer(data, cnn_fn, cnn_config)
    trainer.run()
    x, y = probe_subset(trainer.x_train, trainer.y_train)
    res = 7 if quick else 21
    # No warm-up (the toy part paid vmap's one-time set-up); the median of 3 timed grids, since one
    # grid of 3–5 s moved by ±20 % from run to run on this shared machine.
    times, _, _ = surface_seconds(trainer, x, y, res, repeats=1 if quick else 3, warmup=0)
    report.time(f"digits_surface_{res}x{res}_{len(x)}_images", times)
    seconds = median(times)
    flops, (rows, k, n) = forward_flops(cnn_fn(), x[:1])
    achieved = flops * len(x) * res * res / seconds
    reference = mm_flops(rows * 64, k, n, repeats * 5)
    print(f"# digits: {flops * len(x) * res * res / 1e9:.3g} GFLOP, {achieved / 1e9:.3g} GFLOP/s; torch.mm "
          f"({rows * 64}, {k}) @ ({k}, {n}) {reference / 1e9:.3g} GFLOP/s", flush=True)
    report.ratio(f"digits_surface_{res}x{res}_s", seconds, 5.0)
    report.ratio("digits_surface_flops_over_mm", achieved / reference, 0.3, ">=")
    long_config = TrainConfig(**{**vars(cnn_config), "epochs": 4 if quick else 12})
    recording_overhead(report, "digits", data, cnn_fn, long_config, 2 if quick else 10, 2 if quick else 4)
    report.finish(args.check)


if __name__ == "__main__":
    main()
