"""SEMA as a Lightning callback (``pip install "sema-demo[lightning]"``).

    trainer = lightning.Trainer(callbacks=[SEMACallback(momentum=0.999)], max_epochs=30)
    trainer.fit(model, train_loader, val_loader)

It follows the conventions of Lightning's own ``WeightAveraging`` callback (2.6): the
average is updated after every *optimizer* step (gradient accumulation counts optimizer
steps, not batches), validation runs on φ, a checkpoint's ``state_dict`` holds φ with the
live weights under ``current_model_state``, and after ``fit`` the module holds φ.  It adds
the one SEMA line: θ ← φ at the end of every ``switch_every_epochs``-th epoch, optimizer
state kept.  Why it does not subclass ``WeightAveraging``: see docs/ARCHITECTURE.md.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import lightning.pytorch as pl

from .averaging import SwitchEMA, _check_positive_int

__all__ = ["SEMACallback"]


class SEMACallback(pl.Callback):
    """Switch EMA for ``lightning.Trainer``; the averager is ``.averager`` (a :class:`SwitchEMA`).

    Args:
        momentum: α, the EMA decay (φ ← α·φ + (1 − α)·θ); horizon ≈ 1/(1 − α) optimizer steps.
        switch_every_epochs: θ ← φ at the end of every this many training epochs.
        warmup: None, "linear" or "power": ramp α up at the start (see SwitchEMA).
        warmup_steps: the ramp's length in optimizer steps.
        buffers: "copy" or "average", as for SwitchEMA.
        **options: more SwitchEMA options (``update_every``, ``dtype``, ``warmup_ratio`` …).
    """

    def __init__(self, momentum: float = 0.999, switch_every_epochs: int = 1, warmup: str | None = None,
                 warmup_steps: int | None = None, buffers: str = "copy", **options: Any):
        self.switch_every_epochs = _check_positive_int("switch_every_epochs", switch_every_epochs)
        # every SwitchEMA argument but the model (checked when the averager is built, at setup)
        self.settings = dict(momentum=momentum, buffers=buffers, warmup=warmup, warmup_steps=warmup_steps,
                             **options)
        self.averager: SwitchEMA | None = None
        self._latest_update_step = 0          # trainer.global_step at the last update
        self._switched_last_epoch = False
        self._validation = ExitStack()

    # ---- building: at setup (before a checkpoint is restored), re-paired once on the device
    def _build(self, pl_module: pl.LightningModule) -> SwitchEMA:
        return SwitchEMA(pl_module, switch_every=None, **self.settings)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.averager = self._build(pl_module)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The strategy has now moved (and maybe wrapped) the module: pair φ with its tensors."""
        state = self.averager.state_dict()
        self.averager = self._build(pl_module)
        self.averager.load_state_dict(state)

    # ---- training
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step > self._latest_update_step:      # an optimizer step happened
            self.averager.update()
            self._latest_update_step = trainer.global_step

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._switched_last_epoch = (trainer.current_epoch + 1) % self.switch_every_epochs == 0
        if self._switched_last_epoch:
            self.averager.switch()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """As WeightAveraging: after fit the module holds the average."""
        if not self._switched_last_epoch:
            self.averager.switch()

    # ---- validation on φ (every rank swaps; φ's buffers are synced across ranks first)
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.averager is not None and trainer.state.fn == "fit":
            self._validation.enter_context(self.averager.swap())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation.close()

    # ---- checkpoints: state_dict = φ, current_model_state = θ, averaging_state = the counters
    def state_dict(self) -> dict[str, Any]:
        return {"latest_update_step": self._latest_update_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._latest_update_step = state_dict["latest_update_step"]

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if self.averager is None:
            return
        state = self.averager.state_dict()
        checkpoint["current_model_state"] = checkpoint["state_dict"]
        checkpoint["state_dict"] = state.pop("module")
        checkpoint["averaging_state"] = state

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if self.averager is None:
            return
        if "current_model_state" in checkpoint and "averaging_state" in checkpoint:
            # Lightning loaded φ ("state_dict") into the module: put θ back, then restore φ
            pl_module.load_state_dict(checkpoint["current_model_state"])
            self.averager.load_state_dict({**checkpoint["averaging_state"], "module": checkpoint["state_dict"]})
        else:                                   # a checkpoint without SEMA: start φ from its weights
            self.averager.reset()
