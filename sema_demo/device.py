"""Pick the compute device: CUDA, then Apple MPS, then CPU; overridable by name."""
from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def pick_device(requested: str = "auto") -> torch.device:
    """The device to train on. ``"auto"`` takes the fastest available one.

    Asking for a device that is not present raises ``ValueError`` with what is available.
    """
    requested = (requested or "auto").lower()
    if requested not in DEVICE_CHOICES and not requested.startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {requested!r}")
    found = available_devices()
    if requested == "auto":
        return torch.device("cuda" if "cuda" in found else "mps" if "mps" in found else "cpu")
    if requested.split(":")[0] not in found:
        raise ValueError(f"device {requested!r} was requested but is not available here; "
                         f"available: {', '.join(found)}")
    return torch.device(requested)
