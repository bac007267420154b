"""How much does SEMA cost?  The averager's update against PyTorch's own EMA, and a
training step with SEMA against a plain one.

Models: a ResNet-style CNN (sema_demo.models.small_resnet, width 48, ≈ 0.69 M
parameters, batch 64 of 32×32×3) and a 2-64-64-2 MLP.  Every figure is a ratio of
medians measured side by side in this process (A, B, A, B … after a warm-up).

    python benchmarks/bench_averaging.py [--quick] [--check]
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from benchlib import Report, alternate, header, median, parse_args
from sema_demo import SwitchEMA
from sema_demo.models import count_parameters, mlp, small_resnet

ALPHA = 0.999


def averager_costs(model: nn.Module, calls: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per update()/switch() call, ours vs AveragedModel + get_ema_multi_avg_fn."""
    sema = SwitchEMA(model, momentum=ALPHA)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ALPHA))

    def ours():
        for _ in range(calls):
            sema.update()

    def pytorch():
        for _ in range(calls):
            reference.update_parameters(model)

    def switch():
        for _ in range(calls):
            sema.switch()

    times = alternate({"ours": ours, "pytorch": pytorch, "switch": switch}, repeats, warmup=2)
    return {k: [t / calls for t in v] for k, v in times.items()}


def training_step_costs(model: nn.Module, batch: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per training step, plain vs with SwitchEMA.update() (same model, same data)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sema = SwitchEMA(model, momentum=ALPHA)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step():
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def step_with_sema():
        step()
        sema.update()

    return alternate({"plain": step, "sema": step_with_sema}, repeats, warmup=2)


def main() -> None:
    args = parse_args(__doc__)
    header("bench_averaging")
    report = Report()
    repeats = args.repeats or (5 if args.quick else 31)
    cnn = small_resnet(3, 10, width=48)
    net = mlp(2, (64, 64), 2)
    print(f"# CNN {count_parameters(cnn):,} parameters; MLP {count_parameters(net):,} parameters")

    for name, model, calls in (("cnn", cnn, 20 if args.quick else 100), ("mlp", net, 200 if args.quick else 2000)):
        costs = averager_costs(model, calls, repeats)
        report.time(f"{name}_sema_update", costs["ours"])
        report.time(f"{name}_pytorch_ema_update", costs["pytorch"])
        report.time(f"{name}_sema_switch", costs["switch"])
        report.ratio(f"{name}_update_vs_pytorch_ema", median(costs["ours"]) / median(costs["pytorch"]), 0.5)
        report.ratio(f"{name}_switch_vs_update", median(costs["switch"]) / median(costs["ours"]), 1.0)

    steps = training_step_costs(cnn, batch=16 if args.quick else 64, repeats=repeats)
    report.time("cnn_train_step_plain", steps["plain"])
    report.time("cnn_train_step_with_sema", steps["sema"])
    report.ratio("cnn_train_step_sema_vs_plain", median(steps["sema"]) / median(steps["plain"]), 1.03)
    report.finish(args.check)


if __name__ == "__main__":
    main()
