"""How much does SEMA cost?  The averager's update against PyTorch's own EMA, and a
training step with SEMA against a plain one; the warm-up, a float32 φ for bf16 weights, and
a 2-process DDP (gloo, CPU) training step.

Models: a ResNet-style CNN (sema_demo.models.small_resnet, width 48, ≈ 0.69 M
parameters, batch 64 of 32×32×3; the same in bf16 for the float32-φ line) and a 2-64-64-2
MLP.  The DDP line trains the CNN on 2 gloo processes (1 thread each, 32 images per rank;
width 16 and 8 images with --quick).  Every figure is a ratio of
medians measured side by side in this process (A, B, A, B … after a warm-up).

    python benchmarks/bench_averaging.py [--quick] [--check]
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from benchlib import Report, alternate, header, median, parse_args  # noqa: E402
from sema_demo import SwitchEMA  # noqa: E402
from sema_demo.models import count_parameters, mlp, small_resnet  # noqa: E402

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


def warmup_costs(model: nn.Module, calls: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per update(), in the linear warm-up (α_t computed every call) vs without."""
    plain = SwitchEMA(model, momentum=ALPHA)
    ramped = SwitchEMA(model, momentum=ALPHA, warmup="linear", warmup_steps=10**9)

    def run(averager):
        return lambda: [averager.update() for _ in range(calls)]

    times = alternate({"plain": run(plain), "warmup": run(ramped)}, repeats, warmup=2)
    return {k: [t / calls for t in v] for k, v in times.items()}


def bf16_costs(model: nn.Module, calls: int, repeats: int) -> dict[str, list[float]]:
    """bf16 weights: our update with a float32 φ vs AveragedModel's EMA (a bf16 average)."""
    ours = SwitchEMA(model, momentum=ALPHA, dtype=torch.float32)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ALPHA))

    times = alternate({"ours": lambda: [ours.update() for _ in range(calls)],
                       "pytorch": lambda: [reference.update_parameters(model) for _ in range(calls)]},
                      repeats, warmup=2)
    return {k: [t / calls for t in v] for k, v in times.items()}


def _ddp_worker(rank: int, rendezvous: str, out: str, width: int, batch: int, repeats: int) -> None:
    """One rank of a 2-process DDP training step, plain vs with SwitchEMA.update(), alternated in
    lockstep on both ranks (the all-reduce keeps them together)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = small_resnet(3, 10, width=width)
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    sema = SwitchEMA(ddp, momentum=ALPHA)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step():
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def step_with_sema():
        step()
        sema.update()

    times = alternate({"plain": step, "sema": step_with_sema}, repeats, warmup=2)
    # context: the update alone, what the SEMA step adds to the plain one (no communication)
    times["update"] = alternate({"update": sema.update}, repeats, warmup=2)["update"]
    if rank == 0:
        torch.save(times, out)
    dist.barrier()          # no rank tears the group down while its peer still talks (gloo aborts then)
    dist.destroy_process_group()


def ddp_step_costs(width: int, batch: int, repeats: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "times.pt")
        mp.start_processes(_ddp_worker, args=(os.path.join(folder, "rendezvous"), out, width, batch, repeats),
                           nprocs=2, join=True, start_method="spawn")
        return torch.load(out)


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

    ramp = warmup_costs(cnn, 20 if args.quick else 100, repeats)
    report.time("cnn_sema_update_in_warmup", ramp["warmup"])
    report.ratio("cnn_update_warmup_vs_plain", median(ramp["warmup"]) / median(ramp["plain"]), 1.05)

    bf16 = small_resnet(3, 10, width=48).to(torch.bfloat16)
    low = bf16_costs(bf16, 20 if args.quick else 100, repeats)
    report.time("bf16_cnn_sema_update_fp32_phi", low["ours"])
    report.time("bf16_cnn_pytorch_ema_update", low["pytorch"])
    report.ratio("bf16_update_fp32_phi_vs_pytorch_ema", median(low["ours"]) / median(low["pytorch"]), 0.5)

    if dist.is_available():
        ddp = ddp_step_costs(width=16 if args.quick else 48, batch=8 if args.quick else 32,
                             repeats=5 if args.quick else 21)
        report.time("ddp2_cnn_train_step_plain", ddp["plain"])
        report.time("ddp2_cnn_train_step_with_sema", ddp["sema"])
        report.time("ddp2_sema_update_alone", ddp["update"])
        print(f"# the update alone takes {median(ddp['update']) / median(ddp['plain']):.2%} of a plain DDP step; "
              "the ratio's distance from 1 beyond that is the step's own spread", flush=True)
        report.ratio("ddp2_train_step_sema_vs_plain", median(ddp["sema"]) / median(ddp["plain"]), 1.03)
    report.finish(args.check)


if __name__ == "__main__":
    main()
