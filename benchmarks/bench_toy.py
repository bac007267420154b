"""Toy-data training speed: all methods (and seeds) in the engine vs ONE model in a plain loop.

    python benchmarks/bench_toy.py [--quick] [--check] [--repeats N]

Setup: two moons, 1,000 training points (+ 250 test), MLP 2-64-64-2 tanh, batch 32,
100 epochs, SGD with momentum 0.9, lr 0.05, on the CPU with one thread (see main()).

- plain:    the loop a practitioner writes for ONE model: ``nn.Sequential`` +
            ``torch.optim.SGD``, a fresh permutation per epoch, no evaluation at all;
- engine:   ``Trainer.run()`` for SGD + EMA + SEMA (one seed each), including what the
            page needs every epoch: train and test loss/accuracy of every run's evaluated
            weights (no decision grid).  The engine picks its batched MLP path;
- engine×5: the same for 5 seeds × 3 methods = 15 networks;
- per-run:  context only, the engine's generic path (one module per run) for the 3 methods;
- kernels:  context only, the bare kernels 15 networks' steps need at the least (``bare_kernels``):
            the floor this machine puts under the 15-run ratio, printed beside it.

Candidates alternate A, B, C, … after a warm-up and the medians are compared:

- three_methods_vs_one_model:  engine ÷ plain, target ≤ 1.0 (all three for the price of one);
- fifteen_runs_vs_one_model:   engine×5 ÷ plain, target ≤ 2.0.

The measured map (``sema_demo.maps``, the Decision boundaries page's map tab) on the page's
default (moons 800 points, MLP 2-32-32-2 ReLU, momentum SGD lr 0.3, batch 16, 40 epochs):
5 α × 5 switch intervals × 8 seeds × 3 methods in one run, timed once (it is long):

- measured_map_seconds_over_60s_bound: its wall time ÷ 60 s, target ≤ 1.0.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchlib import Report, alternate, header, median, parse_args  # noqa: E402
from sema_demo.datasets.toy import toy_data  # noqa: E402
from sema_demo.models import mlp  # noqa: E402
from sema_demo.training import Data, Trainer, TrainConfig  # noqa: E402

N_TRAIN, BATCH, LR, MOMENTUM = 1000, 32, 0.05, 0.9


def model_fn() -> torch.nn.Module:
    return mlp(2, (64, 64), 2, "tanh")


def plain_loop(data: Data, epochs: int) -> None:
    torch.manual_seed(0)
    model = model_fn()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = data.x_train, data.y_train
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(BATCH):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def engine(data: Data, epochs: int, seeds: tuple[int, ...], batched: bool | None = None) -> None:
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=seeds, epochs=epochs, batch_size=BATCH,
                         optimizer="momentum", lr=LR, beta=MOMENTUM, ema_momentum=0.99, device="cpu")
    Trainer(data, model_fn, config, batched=batched).run()


def bare_kernels(data: Data, epochs: int, runs: int = 15, averaged: int = 10) -> None:
    """What ``runs`` networks of one step need at the least, as bare kernels and nothing else: the
    batched forward (baddbmm, tanh as 2·σ(2z) − 1), the hand-written backward (bmm), momentum SGD
    and the EMA lerp of the ``averaged`` runs, for as many steps as the loops train (no shuffling,
    no evaluation, no bookkeeping).  Its time ÷ the plain loop's is the floor this machine puts
    under ``fifteen_runs_vs_one_model`` (context for the target, printed beside it)."""
    sizes = [2, 64, 64, 2]
    gen = torch.Generator().manual_seed(0)
    w = [torch.randn(runs, o, i, generator=gen) * 0.1 for i, o in zip(sizes, sizes[1:])]
    b = [torch.zeros(runs, o) for o in sizes[1:]]
    params = w + b
    velocity, grads = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    phi = [p[:averaged].clone() for p in params]
    x = data.x_train[:BATCH].expand(runs, BATCH, 2).contiguous()
    rows = torch.arange(runs * BATCH)
    y = data.y_train[:BATCH].repeat(runs)
    for _ in range(epochs * -(-len(data.x_train) // BATCH)):
        hs, h = [x], x
        for i in range(3):
            z = torch.baddbmm(b[i].unsqueeze(1), h, w[i].mT)
            h = torch.sigmoid_(z.mul_(2)).mul_(2).sub_(1) if i < 2 else z
            hs.append(h)
        p = torch.softmax(h.reshape(-1, 2), 1)
        p[rows, y] -= 1
        dz = (p / BATCH).view(runs, BATCH, 2)
        for i in (2, 1, 0):
            torch.bmm(dz.mT, hs[i], out=grads[i])
            grads[3 + i].copy_(dz.sum(1))
            if i:
                dz = torch.bmm(dz, w[i]).mul_(1 - hs[i] * hs[i])
        torch._foreach_mul_(velocity, MOMENTUM)
        torch._foreach_add_(velocity, grads)
        torch._foreach_add_(params, velocity, alpha=-LR)
        torch._foreach_lerp_(phi, [t[:averaged] for t in params], 0.01)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    # One thread for every candidate: on a shared machine a multi-threaded op waits for its
    # slowest thread, which makes times jumpy; the figures are ratios measured side by side.
    torch.set_num_threads(1)
    epochs = 5 if args.quick else 100
    repeats = args.repeats or (2 if args.quick else 7)
    data = toy_data("moons", n=N_TRAIN * 5 // 4, noise=0.2, test_fraction=0.2, seed=0)
    assert len(data.x_train) == N_TRAIN
    header(f"bench_toy: moons {N_TRAIN} train points, MLP 2-64-64-2 tanh, batch {BATCH}, {epochs} epochs, "
           "momentum SGD", "cpu")
    times = alternate({
        "plain_one_model": lambda: plain_loop(data, epochs),
        "engine_3_methods": lambda: engine(data, epochs, (0,)),
        "engine_5_seeds_x_3_methods": lambda: engine(data, epochs, (0, 1, 2, 3, 4)),
        "engine_per_run_path_3_methods": lambda: engine(data, epochs, (0,), batched=False),
        "bare_kernels_15_runs": lambda: bare_kernels(data, epochs),
    }, repeats, warmup=1)
    report = Report()
    for name, values in times.items():
        report.time(name, values)
    plain = median(times["plain_one_model"])
    report.ratio("three_methods_vs_one_model", median(times["engine_3_methods"]) / plain, 1.0)
    floor = median(times["bare_kernels_15_runs"]) / plain
    fifteen = median(times["engine_5_seeds_x_3_methods"]) / plain
    print(f"# floor: the bare kernels of 15 runs' steps alone take {floor:.3g} × the plain loop on this machine "
          f"(no evaluation, no shuffling); the engine's 15 runs take {fifteen / floor:.3g} × those kernels", flush=True)
    probe = Trainer(data, model_fn, TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1, 2, 3, 4), epochs=1,
                                                batch_size=BATCH, device="cpu"))
    print(f"# context: of the engine's 15 runs it trains {probe._engine.trained} rows — EMA never writes back, so its "
          "live weights are SGD's bit for bit and are copied — and evaluates all 15 every epoch", flush=True)
    report.ratio("fifteen_runs_vs_one_model", fifteen, 2.0)
    map_ratio(report, args.quick)
    report.finish(args.check)


def map_ratio(report: Report, quick: bool) -> None:
    """The toy default's 5 × 5 × 8 seeds × 3 methods measured map against its 60 s bound."""
    from functools import partial

    from sema_demo.maps import measured_map
    data = toy_data("moons", 800, 0.3, 0.2)
    base = TrainConfig(epochs=2 if quick else 40, batch_size=16, optimizer="momentum", lr=0.3, device="cpu")
    result = measured_map(data, partial(mlp, 2, (32, 32), 2, "relu"), base, (0.8, 0.9, 0.95, 0.98, 0.99),
                          (1, 2, 3, 5, 10), range(8), target=0.95)
    report.time(f"measured_map_5x5x8x3_{base.epochs}_epochs", result.seconds)
    if not quick:
        report.ratio("measured_map_seconds_over_60s_bound", result.seconds / 60.0, 1.0)


if __name__ == "__main__":
    main()
