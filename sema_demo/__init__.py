"""SEMA Lab: Switch EMA (Li et al., arXiv 2402.09240) to read, run and see.

    from sema_demo import SwitchEMA
    sema = SwitchEMA(model, momentum=0.999)   # α is the decay; horizon ≈ 1/(1 − α) steps
    ...  optimizer.step(); sema.update()      # after every step
    sema.switch()                             # at the end of every epoch: θ ← φ
"""
__version__ = "0.1.0"
__all__ = ["EMA", "SwitchEMA", "SWA", "Lookahead", "__version__"]


def __getattr__(name: str):
    # The averagers are imported on first use, not with the package: `sema-demo` then starts
    # without torch, so a Ctrl-C during its first seconds reaches the CLI's own handler.
    if name in __all__:
        from . import averaging
        return getattr(averaging, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
