"""The one output convention of every ``benchmarks/bench_*.py`` (see docs/ARCHITECTURE.md).

    RATIO <name> <value> target <= <bound> PASS|MISS     (or >=)
    TIME  <name> <seconds> (median of N)                 (context only)

Timings are measured side by side in one process, alternating A, B, A, B … after a
warm-up, and reported as medians, because this machine is shared and noisy.
``--quick`` shrinks every benchmark to seconds (CI smoke test); ``--check`` exits 1
when any RATIO line is a MISS.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import torch


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    parser.add_argument("--check", action="store_true", help="exit 1 if any RATIO misses its target")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per candidate")
    return parser.parse_args(argv)


def header(name: str, device: str = "cpu") -> None:
    print(f"# {name} | {platform.machine()} {os.cpu_count()} cores | torch {torch.__version__} "
          f"({torch.get_num_threads()} threads) | python {platform.python_version()} | device {device}")


def alternate(candidates: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
              sync: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Time each candidate ``repeats`` times, interleaved A, B, A, B …; returns seconds per call."""
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            if sync:
                sync()
            start = time.perf_counter()
            fn()
            if sync:
                sync()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def quantile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0.95: p95) of ``values``, in whole percent (inclusive method)."""
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if len(values) > 1 else values[0]


class Report:
    """Collects RATIO lines and decides the exit code."""

    def __init__(self) -> None:
        self.misses: list[str] = []

    def time(self, name: str, seconds: list[float] | float) -> None:
        values = seconds if isinstance(seconds, list) else [seconds]
        print(f"TIME  {name} {median(values):.6g} (median of {len(values)})", flush=True)

    def quantile(self, name: str, seconds: list[float], q: float) -> float:
        """A TIME line with the ``q``-quantile (0.95: p95) instead of the median; returns it."""
        value = quantile(seconds, q)
        print(f"TIME  {name} {value:.6g} (p{round(q * 100)} of {len(seconds)})", flush=True)
        return value

    def ratio(self, name: str, value: float, bound: float, op: str = "<=") -> bool:
        ok = value <= bound if op == "<=" else value >= bound
        print(f"RATIO {name} {value:.4g} target {op} {bound:g} {'PASS' if ok else 'MISS'}", flush=True)
        if not ok:
            self.misses.append(name)
        return ok

    def finish(self, check: bool) -> None:
        if check and self.misses:
            print(f"# MISS: {', '.join(self.misses)}", file=sys.stderr)
            sys.exit(1)


def dense_kernels(model: torch.nn.Module, x1: torch.Tensor) -> list[tuple[str, int, int]]:
    """The dense kernels of one forward pass of an MLP, in order: ("mm", in, out) per Linear and
    (activation class name, width, 0) per activation module."""
    kernels: list[tuple[str, int, int]] = []

    def record(module, _inputs, output):
        kernels.append(("mm", module.in_features, module.out_features) if isinstance(module, torch.nn.Linear)
                       else (type(module).__name__, output.shape[-1], 0))

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if isinstance(m, (torch.nn.Linear, torch.nn.Tanh, torch.nn.ReLU, torch.nn.Sigmoid))]
    with torch.no_grad():
        model.eval()(x1[:1])
    for hook in hooks:
        hook.remove()
    return kernels


def matmul_flops(kernels: list[tuple[str, int, int]], rows: int) -> int:
    """2·m·n·k summed over the Linear layers of one forward pass on ``rows`` inputs."""
    return sum(2 * rows * k * n for kind, k, n in kernels if kind == "mm")


# Each activation as plain in-place torch kernels: torch's own, and the cheaper exact rewrite where one
# exists (tanh x = 2·σ(2x) − 1, the doubling folded into the matmul's alpha).  A reference takes the faster.
ACTIVATION_KERNELS = {
    "Tanh": {"torch.tanh_": torch.Tensor.tanh_, "2·sigmoid_−1": lambda t: t.sigmoid_().mul_(2).sub_(1)},
    "ReLU": {"torch.relu_": torch.Tensor.relu_},
    "Sigmoid": {"torch.sigmoid_": torch.Tensor.sigmoid_},
}


def dense_pass(kernels: list[tuple[str, int, int]], rows: int, device="cpu", variant: int | None = 0):
    """One pass's work on ``rows`` inputs as dense kernels into preallocated buffers: a ``torch.mm`` per
    Linear and the ``variant``-th kernel of ACTIVATION_KERNELS per activation (the last one when there are
    fewer; ``None``: no activations, matmuls alone)."""
    gen = torch.Generator().manual_seed(0)
    steps = []
    for kind, k, n in kernels:
        if kind == "mm":
            a, w = torch.randn(rows, k, generator=gen).to(device), torch.randn(k, n, generator=gen).to(device)
            out = torch.empty(rows, n, device=device)
            steps.append(partial(torch.mm, a, w, out=out))
        elif variant is not None:
            choices = list(ACTIVATION_KERNELS[kind].values())
            data = torch.randn(rows, k, generator=gen).to(device)
            steps.append(partial(choices[min(variant, len(choices) - 1)], data))

    def run() -> None:
        for step in steps:
            step()
    return run
