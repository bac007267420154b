"""Benchmark: batched loss-landscape slices and the Hessian's top eigenvalue (sema_demo.sharpness).

Set-up (all in one place): two moons (noise 0.5), 1,000 training points; the toy MLP
2-32-32-2 tanh of the landscape page's quick default, trained by the shared engine
(momentum SGD, lr 0.05, 30 epochs, batch 32) for SGD, EMA (α = 0.95) and SEMA.

    RATIO slice2d_flops_over_dense      achieved FLOP/s of a 41×41 2-D slice of the SGD solution on the 1,000
                                        points (batched: functional_call + vmap) ÷ the FLOP/s the machine reaches
                                        on the same work as plain dense kernels, measured in the same run
    RATIO slice2d_batched_over_loop_Nt  the batched slice's time ÷ the same slice point by point in a Python loop
                                        (weights written in place, one forward each), at N = 1 and 2 threads
    RATIO top_eigenvalue_hvps           Hessian-vector products power iteration used (worst of the 3 methods)
    RATIO top_eigenvalue_rel_error      |λ − λ_exact| / |λ_exact| (worst of the 3), λ_exact the eigenvalue of
                                        largest magnitude from torch.linalg.eigvalsh of the full Hessian

FLOPs are counted honestly: 2·m·n·k for every Linear of every forward pass the slice needs
(grid points × data rows), nothing for the activations, the loss or building the points.
The dense reference does one pass's work (points per vmapped pass × rows) with the same
shapes: a ``torch.mm`` into a preallocated buffer per Linear and an in-place ``tanh_`` per
Tanh; weights shared, so it is the hardware's speed on this work with no per-point overhead.
The tanh belongs in the reference because on a CPU it costs more than the matmuls: a
32-wide layer does 2·32 = 64 FLOPs per activation, and one tanh takes longer than 64 FLOPs
of a dense mm (the "# dense" line shows the split and the share of dense ``torch.mm`` alone).
Timings alternate batched, loop, dense, batched … after a warm-up; medians.
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


def forward_kernels(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[str, int, int]]:
    """The dense kernels of one forward pass, in order: ("mm", in, out) per Linear, ("tanh", width, 0) per Tanh."""
    kernels: list[tuple[str, int, int]] = []

    def record(module, _inputs, output):
        kernels.append(("mm", module.in_features, module.out_features) if isinstance(module, torch.nn.Linear)
                       else ("tanh", output.shape[-1], 0))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Tanh))]
    with torch.no_grad():
        model(x[:1])
    for hook in hooks:
        hook.remove()
    return kernels


def matmul_flops(kernels: list[tuple[str, int, int]], rows: int) -> int:
    """2·m·n·k summed over the Linear layers of one forward pass on ``rows`` inputs."""
    return sum(2 * rows * k * n for kind, k, n in kernels if kind == "mm")


def dense_pass(kernels: list[tuple[str, int, int]], rows: int, device, with_tanh: bool = True):
    """One vmapped pass's work (``rows`` = points per pass × data rows) as plain dense kernels, buffers preallocated."""
    gen = torch.Generator().manual_seed(0)
    steps = []
    for kind, k, n in kernels:
        if kind == "mm":
            a, w = torch.randn(rows, k, generator=gen).to(device), torch.randn(k, n, generator=gen).to(device)
            out = torch.empty(rows, n, device=device)
            steps.append(partial(torch.mm, a, w, out=out))
        elif with_tanh:
            steps.append(torch.randn(rows, k, generator=gen).to(device).tanh_)

    def run() -> None:
        for step in steps:
            step()
    return run


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
    kernels = forward_kernels(surface.model, x)
    points, per_pass = steps * steps, surface.points_per_pass
    flops, pass_flops = points * matmul_flops(kernels, len(x)), matmul_flops(kernels, per_pass * len(x))
    print(f"# {flops / 1e9:.3g} GFLOP of matmuls in {points} × {len(x)} forward passes", flush=True)
    candidates = {"batched": lambda: slice_2d(surface, d1, d2, offsets),
                  "loop": lambda: loop_slice(model_fn, surface, d1, d2, offsets, x, y),
                  "dense": dense_pass(kernels, per_pass * len(x), device),
                  "dense_mm": dense_pass(kernels, per_pass * len(x), device, with_tanh=False)}

    report = Report()
    thread_counts = sorted({1, min(2, torch.get_num_threads())}, reverse=True) if device.type == "cpu" else [0]
    threads = torch.get_num_threads()
    for count in thread_counts:
        if count:
            torch.set_num_threads(count)
        times = alternate(candidates, repeats, sync=sync)
        tag = f"_{count}t" if count else ""
        batched_flops = flops / median(times["batched"])
        dense_flops, mm_flops = pass_flops / median(times["dense"]), pass_flops / median(times["dense_mm"])
        report.time(f"slice2d_{steps}x{steps}_batched{tag}", times["batched"])
        report.time(f"slice2d_{steps}x{steps}_loop{tag}", times["loop"])
        print(f"# dense{tag}: batched {batched_flops / 1e9:.3g} GFLOP/s; the same work as dense kernels "
              f"{dense_flops / 1e9:.3g} GFLOP/s, as dense torch.mm alone {mm_flops / 1e9:.3g} GFLOP/s "
              f"(batched reaches {batched_flops / mm_flops:.3g} of torch.mm alone; "
              f"tanh takes {1 - dense_flops / mm_flops:.2f} of the dense time)", flush=True)
        if count == thread_counts[0]:
            report.ratio("slice2d_flops_over_dense", batched_flops / dense_flops, 0.5, ">=")
        report.ratio(f"slice2d_batched_over_loop{tag}", median(times["batched"]) / median(times["loop"]), 1.0)
    torch.set_num_threads(threads)

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
