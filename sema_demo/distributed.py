"""The torch.distributed glue of the averagers: unwrapping, local shards, buffer all-reduce.

The averagers themselves live in :mod:`sema_demo.averaging` (one implementation for one
process, DDP and FSDP2); this module holds only what they need to know about wrappers and
process groups, so that ``averaging.py`` reads as the algorithm.

- **DDP**: after the gradient all-reduce θ's parameters are identical on every rank, so φ's
  parameters stay identical with no communication at all.  θ's floating *buffers*
  (BatchNorm statistics) are not: each rank updates them from its own batch.  The averager
  all-reduces φ's floating buffers (their mean over ranks) at every ``switch()`` and in
  ``swap()`` / ``sync_buffers()``, the moments a rank would otherwise act on its own copy.
- **FSDP2** (``fully_shard``): parameters are ``DTensor`` shards.  φ keeps one plain tensor
  per local shard; the update is the same fused lerp on local tensors and the switch writes
  into the local shards, so neither gathers nor communicates and the optimizer (which holds
  the sharded parameters) keeps its state.
- **torch.compile** and DDP wrap the module (``_orig_mod``, ``module``); the averager copies
  the unwrapped module, so its checkpoint keys carry neither prefix.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["unwrap", "is_sharded", "local_tensor", "world_size", "all_reduce_mean_", "strip_prefixes"]

WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel and torch.compile wrappers (any nesting)."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def _dtensor_type():
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:        # a torch built without distributed support
        return None
    return DTensor


def is_sharded(model: nn.Module) -> bool:
    """True when the model's parameters are DTensor shards (FSDP2 ``fully_shard``)."""
    dtensor = _dtensor_type()
    return dtensor is not None and any(isinstance(p, dtensor) for p in model.parameters())


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of ``t``: the local shard of a DTensor (a view: writes reach the
    parameter), ``t`` itself otherwise."""
    dtensor = _dtensor_type()
    return t._local_tensor if dtensor is not None and isinstance(t, dtensor) else t


def world_size() -> int:
    """The number of ranks of the default process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def all_reduce_mean_(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor by its mean over all ranks, in place (nothing to do on one rank).
    Every rank must call this with the same tensors in the same order."""
    if not tensors:
        return
    n = world_size()
    if n == 1:
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    torch._foreach_div_(tensors, float(n))


def strip_prefixes(key: str, known: set[str] | dict) -> str:
    """``key`` without the wrappers' ``module.`` / ``_orig_mod.`` parts, when that names a
    tensor of ``known`` and ``key`` itself does not."""
    if key in known:
        return key
    parts = [p for p in key.split(".") if p != "_orig_mod"]
    while parts and parts[0] == "module" and ".".join(parts) not in known:
        parts = parts[1:]
    stripped = ".".join(parts)
    return stripped if stripped in known else key
