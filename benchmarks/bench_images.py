"""Image training speed: the engine training one SEMA model vs a bare PyTorch loop, and SEMA vs SGD.

    python benchmarks/bench_images.py [--quick] [--check] [--repeats N]

Setup, on the CPU (one thread, see main()) and on CUDA when present: the small CNN
(width 32, ≈ 0.14 M parameters), 32×32×3 random images already on the device, batch
128, momentum SGD at a constant learning rate, no augmentation (the same for both
sides, so only the engine and the averaging differ).  Per epoch both sides also
evaluate the same small test set once, as any real loop does; the engine's train-set
metrics are switched off (``train_eval_size=0``) because a bare loop has none.
On CUDA both sides use channels_last and bf16 autocast, as the engine does.

Each candidate trains one whole epoch per call; candidates alternate A, B, C, A, B, C …
after a warm-up epoch and the medians are compared:

- engine_vs_bare:  images/s of the engine (one SEMA run) ÷ images/s of the bare loop, ≥ 0.95;
- sema_vs_sgd:     epoch time of SEMA ÷ epoch time of plain SGD, both in the engine, ≤ 1.03.

``--quick`` (2 short epochs per candidate) is a smoke test: its ratios are too noisy to judge.
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchlib import Report, alternate, header, median, parse_args  # noqa: E402
from sema_demo.models import small_cnn  # noqa: E402
from sema_demo.training import Data, Trainer, TrainConfig  # noqa: E402

BATCH, LR, MOMENTUM, ALPHA = 128, 0.05, 0.9, 0.99


class BareLoop:
    """The loop a practitioner would write: shuffle, forward, backward, step; evaluate once per epoch."""

    def __init__(self, data: Data, device: torch.device):
        torch.manual_seed(0)
        self.cuda = device.type == "cuda"
        fmt = torch.channels_last if self.cuda else torch.contiguous_format
        self.model = small_cnn(3, data.n_classes).to(device, memory_format=fmt)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.x, self.y = data.x_train.to(device, memory_format=fmt), data.y_train.to(device)
        self.x_test, self.y_test = data.x_test.to(device, memory_format=fmt), data.y_test.to(device)
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if self.cuda else nullcontext

    def epoch(self) -> None:
        self.model.train()
        order = torch.randperm(len(self.x), device=self.x.device)
        for idx in order.split(BATCH):
            with self.autocast():
                loss = F.cross_entropy(self.model(self.x[idx]), self.y[idx])
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.model.eval()
        with torch.no_grad(), self.autocast():
            (self.model(self.x_test).argmax(1) == self.y_test).float().mean().item()


def random_images(n_train: int, n_test: int, device: torch.device) -> Data:
    g = torch.Generator().manual_seed(0)
    return Data(torch.randn(n_train, 3, 32, 32, generator=g).to(device),
                torch.randint(0, 10, (n_train,), generator=g).to(device),
                torch.randn(n_test, 3, 32, 32, generator=g).to(device),
                torch.randint(0, 10, (n_test,), generator=g).to(device), n_classes=10, name="random 32×32×3")


def engine(data: Data, method: str, device: str) -> Trainer:
    config = TrainConfig(methods=(method,), seeds=(0,), epochs=10_000, batch_size=BATCH, optimizer="momentum",
                         lr=LR, beta=MOMENTUM, ema_momentum=ALPHA, device=device, train_eval_size=0)
    return Trainer(data, lambda: small_cnn(3, data.n_classes), config)


def bench(device: str, quick: bool, repeats: int | None, report: Report) -> None:
    dev = torch.device(device)
    # A GPU epoch of a few steps is over in milliseconds: give it more steps so launch overheads show.
    n_train = (256 if quick else 512) if device == "cpu" else (1024 if quick else 8192)
    repeats = repeats or (2 if quick else 9 if device == "cpu" else 15)
    data = random_images(n_train, 256, dev)
    header(f"bench_images: small CNN, {n_train} images 32×32×3, batch {BATCH}", device)
    candidates = {"bare": BareLoop(data, dev).epoch,
                  "engine_sema": engine(data, "sema", device).run_epoch,
                  "engine_sgd": engine(data, "sgd", device).run_epoch}
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    times = alternate(candidates, repeats, warmup=1, sync=sync)
    for name, values in times.items():
        report.time(f"{device}_epoch_{name}", values)
    print(f"# {device}: bare {n_train / median(times['bare']):,.0f} images/s, engine SEMA "
          f"{n_train / median(times['engine_sema']):,.0f} images/s", flush=True)
    report.ratio(f"{device}_engine_vs_bare_images_per_s", median(times["bare"]) / median(times["engine_sema"]),
                 0.95, ">=")
    report.ratio(f"{device}_sema_vs_sgd_epoch_time", median(times["engine_sema"]) / median(times["engine_sgd"]),
                 1.03, "<=")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    report = Report()
    # One CPU thread: on a shared machine a multi-threaded op waits for its slowest thread, which
    # makes epoch times jumpy; the figures are ratios, so steadiness matters more than speed.
    torch.set_num_threads(1)
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        bench(device, args.quick, args.repeats, report)
    report.finish(args.check)


if __name__ == "__main__":
    main()
