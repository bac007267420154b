"""SEMA Lab: Switch EMA (Li et al., arXiv 2402.09240) to read, run and see.

    from sema_demo import SwitchEMA
    sema = SwitchEMA(model, momentum=0.999)   # α is the decay; horizon ≈ 1/(1 − α) steps
    ...  optimizer.step(); sema.update()      # after every step
    sema.switch()                             # at the end of every epoch: θ ← φ
"""
from .averaging import EMA, SWA, Lookahead, SwitchEMA

__version__ = "0.1.0"
__all__ = ["EMA", "SwitchEMA", "SWA", "Lookahead", "__version__"]
