"""SEMA in Lightning: Trainer(strategy="ddp", devices=2, accumulate_grad_batches=2) on the CPU.

    python examples/lightning_sema.py --out /tmp/sema_lightning

Trains a small MLP three ways: 4 epochs straight; 2 epochs, a checkpoint, then 2 more from it.
Writes results.pt (rank 0): the update and switch counts, what validation saw, and the final
θ and φ of the straight and the resumed run, which must be identical.
"""
from __future__ import annotations

import argparse
import os

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sema_demo.lightning import SEMACallback

EPOCHS, ACCUMULATE, BATCH = 4, 2, 8


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
        self.validation_weights: list[float] = []     # the weights validation ran on, per epoch

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.validation_weights.append(weight_sum(self))
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def weight_sum(module: nn.Module) -> float:
    return sum(p.detach().double().sum().item() for p in module.parameters())


def loaders():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(64) % 2
    x = torch.randn(64, 2, generator=g) + (y[:, None] * 2 - 1)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=BATCH), DataLoader(data, batch_size=32)


def fit(epochs: int, root: str, ckpt_path: str | None = None, seen: list | None = None):
    model = Classifier()
    sema = SEMACallback(momentum=0.9, switch_every_epochs=1, warmup="linear", warmup_steps=3)
    if seen is not None:          # θ and φ just before validation (the probe runs before SEMA's swap)
        class Probe(pl.Callback):
            def on_validation_epoch_start(self, trainer, pl_module):
                seen.append((weight_sum(pl_module), weight_sum(sema.averager.module)))
        probes = [Probe(), sema]
    else:
        probes = [sema]
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", accumulate_grad_batches=ACCUMULATE,
                         max_epochs=epochs, callbacks=probes, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         default_root_dir=root)
    train, val = loaders()
    trainer.fit(model, train, val, ckpt_path=ckpt_path)
    return trainer, model, sema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    seen: list = []
    trainer, model, sema = fit(EPOCHS, out, seen=seen)
    straight = {"theta": model.state_dict(), "phi": sema.averager.module.state_dict(),
                "updates": sema.averager.num_updates, "switches": sema.averager.num_switches,
                "validation_weights": model.validation_weights, "seen": seen,
                "steps_per_epoch": trainer.num_training_batches, "world_size": trainer.world_size}
    first, _, _ = fit(EPOCHS // 2, out)
    checkpoint = os.path.join(out, "half.ckpt")
    first.save_checkpoint(checkpoint)
    _, model, sema = fit(EPOCHS, out, ckpt_path=checkpoint)
    resumed = {"theta": model.state_dict(), "phi": sema.averager.module.state_dict(),
               "updates": sema.averager.num_updates, "switches": sema.averager.num_switches}
    if first.global_rank == 0:
        torch.save({"straight": straight, "resumed": resumed, "checkpoint": torch.load(checkpoint)},
                   os.path.join(out, "results.pt"))
        print(f"SEMA with Lightning DDP: {straight['updates']} updates, {straight['switches']} switches; "
              f"resumed run identical: {all(torch.equal(a, resumed['phi'][k]) for k, a in straight['phi'].items())}")


if __name__ == "__main__":
    main()
