"""Optimizer playground: how fast the page can redraw.

    python benchmarks/bench_playground.py [--quick] [--check] [--repeats N]

Three figures, measured side by side in this process (alternating, after a warm-up,
medians; see benchlib):

1. ``simulate`` — SGD, EMA and SEMA for 1,000 steps on the default Two-basins demo,
   plus the loss grid the page draws — against the same simulation written naively:
   a Python loop per method with ``torch.optim.SGD``, autograd and
   ``AveragedModel.update_parameters`` on a 2-element parameter.  Both must give the
   same paths (checked).  Target ≤ 0.1.
2. A full AppTest rerun of the page after a slider change (α moved to a value not
   simulated before, so nothing is served from the cache).  Target ≤ 0.5 s on this machine.
3. Many starts: 256 starts × 3 methods × 1,000 steps against one start.  Target ≤ 5×.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "tests"))
from benchlib import Report, alternate, header, median, parse_args  # noqa: E402
from project_paths import PAGES_DIR  # noqa: E402
from sema_demo.landscapes import get_landscape  # noqa: E402
from sema_demo.trajectories import SimConfig, draw_noise, many_starts, simulate  # noqa: E402

GRID = 220          # the resolution of the surface the page draws


class _Point(nn.Module):
    def __init__(self, start):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(start, dtype=torch.float64))


def naive(config: SimConfig) -> dict[str, np.ndarray]:
    """The obvious implementation: one Python loop per method; returns φ paths."""
    land = get_landscape(config.landscape)
    noise = torch.from_numpy(draw_noise([config.seed], config.steps)[..., 0])
    paths = {}
    for method in config.methods:
        model = _Point(config.start)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.beta)
        decay = 0.0 if method == "sgd" else config.ema_momentum
        avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
        avg.update_parameters(model)                 # the first call copies: φ₀ = θ₀
        phi = [model.p.detach().numpy().copy()]
        for t in range(config.steps):
            opt.zero_grad()
            land.loss(model.p).backward()
            model.p.grad += config.noise * noise[t]
            opt.step()
            avg.update_parameters(model)
            if method == "sema" and (t + 1) % config.switch_interval == 0:
                with torch.no_grad():
                    model.p.copy_(avg.module.p)      # the switch θ ← φ
            phi.append(avg.module.p.detach().numpy().copy())
        paths[method] = np.array(phi)
    land.grid(GRID)
    return paths


def fast(config: SimConfig):
    sim = simulate(config)
    get_landscape(config.landscape).grid(GRID)
    return sim


def page_rerun_seconds(repeats: int) -> list[float]:
    """Full AppTest reruns after moving the α slider to a value not simulated before."""
    import time

    from streamlit.testing.v1 import AppTest

    from sema_demo.ui.common import ALPHA_CHOICES

    at = AppTest.from_file(str(PAGES_DIR / "playground.py"), default_timeout=120)
    at.run()                                          # warm-up: imports, the rendered surface
    alphas = [a for a in ALPHA_CHOICES if a != at.session_state["alpha"]]
    seconds = []
    for i in range(repeats):
        at.sidebar.select_slider(key="alpha").set_value(alphas[i % len(alphas)])
        at.sidebar.number_input(key="seed").set_value(i // len(alphas))   # keep every setting new
        start = time.perf_counter()
        at.run()
        seconds.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    return seconds


def main() -> None:
    args = parse_args(__doc__)
    steps = 200 if args.quick else 1000
    repeats = args.repeats or (3 if args.quick else 7)
    torch.set_num_threads(1)
    header("bench_playground")
    report = Report()
    config = SimConfig.for_landscape("two_basins", steps=steps)      # the page's default demo

    sim, ref = fast(config), naive(config)
    error = max(float(np.abs(sim.paths[m].phi - ref[m]).max()) for m in config.methods)
    print(f"# fast and naive paths agree to {error:.1e} (max |Δφ| over {len(config.methods)} methods)")
    if error > 1e-9:
        print("# MISMATCH between the fast and the naive simulation", file=sys.stderr)
        sys.exit(1)
    times = alternate({"fast": lambda: fast(config), "naive": lambda: naive(config)}, repeats)
    report.time(f"simulate_{steps}_steps_fast", times["fast"])
    report.time(f"simulate_{steps}_steps_naive_torch_loop", times["naive"])
    report.ratio("simulate_fast_over_naive", median(times["fast"]) / median(times["naive"]), 0.1)

    many = alternate({"one": lambda: many_starts(config, 1), "many": lambda: many_starts(config, 256)}, repeats)
    report.time("many_starts_1", many["one"])
    report.time("many_starts_256", many["many"])
    report.ratio("many_starts_256_over_1", median(many["many"]) / median(many["one"]), 5.0)

    seconds = page_rerun_seconds(repeats)
    report.time("page_rerun_after_slider_change", seconds)
    report.ratio("page_rerun_seconds", median(seconds), 0.5)
    report.finish(args.check)


if __name__ == "__main__":
    main()
