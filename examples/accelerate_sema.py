"""SEMA with Hugging Face Accelerate: update() when the optimizer really stepped
(``accelerator.sync_gradients``), and the averager in Accelerate's checkpoints.

    python examples/accelerate_sema.py [checkpoint_dir]     # or: accelerate launch examples/accelerate_sema.py
"""
import sys
import tempfile

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sema_demo import SwitchEMA

accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
torch.manual_seed(0)
y = torch.arange(256) % 2
x = torch.randn(256, 2) + (y[:, None] * 2 - 1)
model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
sema = SwitchEMA(model, momentum=0.99, warmup="linear", warmup_steps=8)   # after prepare()
accelerator.register_for_checkpointing(sema)          # saved and loaded with save_state/load_state

for epoch in range(3):
    for xb, yb in loader:
        with accelerator.accumulate(model):
            accelerator.backward(F.cross_entropy(model(xb), yb))
            optimizer.step()
            optimizer.zero_grad()
        if accelerator.sync_gradients:                 # an optimizer step really happened
            sema.update()
    sema.switch()

steps = sema.num_updates
folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
accelerator.save_state(folder)
sema.update()                                         # move on, then restore the checkpoint
accelerator.load_state(folder)
assert sema.num_updates == steps
accelerator.print(f"{steps} updates for {3 * len(loader)} batches (accumulation 2); checkpoint restored")
