"""Benchmark: batched loss-landscape slices and the Hessian's top eigenvalue (sema_demo.sharpness).

Set-up (all in one place): two moons (noise 0.5), 1,000 training points; the toy MLP
2-32-32-2 tanh of the landscape page's quick default, trained by the shared engine
(momentum SGD, lr 0.05, 30 epochs, batch 32) for SGD, EMA (α = 0.95) and SEMA.

    RATIO slice2d_batched_over_loop   a 41×41 2-D slice of the SGD solution on the 1,000 points,
                                      batched (functional_call + vmap) ÷ the same slice point by point
                                      in a Python loop (weights written in place, one forward each)
    RATIO top_eigenvalue_hvps         Hessian-vector products power iteration used (worst of the 3 methods)
    RATIO top_eigenvalue_rel_error    |λ − λ_exact| / |λ_exact| (worst of the 3), λ_exact the eigenvalue of
                                      largest magnitude from torch.linalg.eigvalsh of the full Hessian

Timings alternate batched, loop, batched, loop … after a warm-up; medians.  On a CPU a
"# context" line repeats the slice timing with one thread: both sides do the same
arithmetic per grid point, so batching wins only what the loop loses to per-point
overhead (Python, kernel launches, thread start-up); on a GPU that overhead dominates.
--quick: a 2-8-8-2 MLP, a 11×11 slice on 200 points, 5 epochs.
"""
from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.benchlib import Report, alternate, header, median, parse_args  # noqa: E402
from sema_demo.datasets.toy import toy_data  # noqa: E402
from sema_demo.models import mlp  # noqa: E402
from sema_demo.sharpness import LossSurface, _unflat, random_directions, slice_2d, top_eigenvalue  # noqa: E402
from sema_demo.training import Trainer, TrainConfig  # noqa: E402


def loop_slice(model_fn, surface: LossSurface, d1, d2, offsets, x, y) -> torch.Tensor:
    """The reference: one grid point at a time, weights written into a network in place."""
    probe = model_fn().to(x.device).eval()
    params = dict(probe.named_parameters())
    out = torch.empty(len(offsets), len(offsets))
    with torch.no_grad():
        for i, a in enumerate(offsets):
            for j, b in enumerate(offsets):
                for name, p in params.items():
                    p.copy_(surface.params[name] + a * d1[name] + b * d2[name])
                out[i, j] = F.cross_entropy(probe(x), y)
    return out


def exact_top_eigenvalue(surface: LossSurface, x, y) -> tuple[float, float, float]:
    """(largest-magnitude, largest, smallest) eigenvalue of the full Hessian, by eigvalsh."""
    flat = torch.cat([p.reshape(-1) for p in surface.params.values()])

    def loss(vector):
        state = {**surface.fixed, **surface.state, **_unflat(vector, surface.params)}
        return F.cross_entropy(torch.func.functional_call(surface.model, state, (x,)), y)

    eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat, vectorize=True).double())
    return float(eigenvalues[eigenvalues.abs().argmax()]), float(eigenvalues[-1]), float(eigenvalues[0])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    hidden, n_train, steps, epochs = ((8, 8), 200, 11, 5) if args.quick else ((32, 32), 1000, 41, 30)
    repeats = args.repeats or (2 if args.quick else 3)
    data = toy_data("moons", n=n_train * 5 // 4, noise=0.5, test_fraction=0.2, seed=0)
    model_fn = partial(mlp, 2, hidden, 2, "tanh")
    trainer = Trainer(data, model_fn, TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0,), epochs=epochs,
                                                  lr=0.05, ema_momentum=0.95))
    trainer.run()
    models = trainer.models()
    device = trainer.device
    header(f"bench_sharpness: MLP 2-{'-'.join(map(str, hidden))}-2 tanh, moons, {len(data.x_train)} points",
           str(device))
    x, y = data.x_train.to(device), data.y_train.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None

    surface = LossSurface(models[("sgd", 0)], x, y)
    d1, d2 = random_directions(surface.params, 2, seed=0)
    offsets = torch.linspace(-1, 1, steps)
    batched = slice_2d(surface, d1, d2, offsets)
    looped = loop_slice(model_fn, surface, d1, d2, offsets, x, y)
    worst_gap = float((batched - looped).abs().max() / looped.abs().max())
    print(f"# {steps}×{steps} slice: batched and loop agree to {worst_gap:.1e} (relative); "
          f"{surface.points_per_pass} points per vmapped pass", flush=True)
    times = alternate({"batched": lambda: slice_2d(surface, d1, d2, offsets),
                       "loop": lambda: loop_slice(model_fn, surface, d1, d2, offsets, x, y)}, repeats, sync=sync)

    report = Report()
    report.time(f"slice2d_{steps}x{steps}_batched", times["batched"])
    report.time(f"slice2d_{steps}x{steps}_loop", times["loop"])
    report.ratio("slice2d_batched_over_loop", median(times["batched"]) / median(times["loop"]), 0.1)
    if device.type == "cpu":   # context: with one thread neither side pays for thread start-up and contention
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        single = alternate({"batched": lambda: slice_2d(surface, d1, d2, offsets),
                            "loop": lambda: loop_slice(model_fn, surface, d1, d2, offsets, x, y)}, repeats)
        torch.set_num_threads(threads)
        print(f"# context, 1 thread: batched {median(single['batched']):.3g} s, loop {median(single['loop']):.3g} s, "
              f"ratio {median(single['batched']) / median(single['loop']):.3g}", flush=True)

    hvps, errors = [], []
    for (method, _), model in models.items():
        method_surface = LossSurface(model, x, y)
        eig = top_eigenvalue(method_surface, max_hvps=50)
        exact, top, bottom = exact_top_eigenvalue(method_surface, x, y)
        hvps.append(eig.hvps)
        errors.append(abs(eig.value - exact) / abs(exact))
        print(f"# {method}: power iteration {eig.value:.5g} in {eig.hvps} HVPs "
              f"({'converged' if eig.converged else 'budget spent'}); eigvalsh: largest |λ| {exact:.5g}, "
              f"spectrum [{bottom:.3g}, {top:.3g}]", flush=True)
    report.ratio("top_eigenvalue_hvps", max(hvps), 50)
    report.ratio("top_eigenvalue_rel_error", max(errors), 0.01)
    report.finish(args.check)


if __name__ == "__main__":
    main()
