"""SEMA under DDP, launched with torchrun (2 CPU processes here, gloo):

    torchrun --standalone --nproc_per_node 2 examples/ddp_torchrun.py

Every rank builds the averager and calls update(), switch() and swap(); φ's parameters
stay identical by themselves, its BatchNorm statistics are averaged over the ranks at
every switch() and swap().  Rank 0 saves the checkpoint.
"""
import os
import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from sema_demo import SwitchEMA

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)                                  # the same initial weights on every rank
model = nn.Sequential(nn.Linear(2, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
ddp = DDP(model)
optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
sema = SwitchEMA(ddp, momentum=0.99, warmup="linear", warmup_steps=16)   # the wrapper is fine

g = torch.Generator().manual_seed(1)
y = torch.arange(512) % 2
x = torch.randn(512, 2, generator=g) + (y[:, None] * 2 - 1)
for epoch in range(3):
    order = torch.randperm(512, generator=g)
    for batch in order.split(32):
        mine = batch.chunk(world)[rank]                 # this rank's part of the global batch
        F.cross_entropy(ddp(x[mine]), y[mine]).backward()
        optimizer.step()
        optimizer.zero_grad()
        sema.update()
    sema.switch()                                       # on every rank
    model.eval()
    with torch.no_grad(), sema.swap():                  # on every rank: φ's buffers synced first
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    if rank == 0:
        print(f"epoch {epoch + 1}: accuracy of φ {accuracy:.3f}")

phi = [t.clone() for t in sema.module.state_dict().values()]
gathered = [None] * world
dist.all_gather_object(gathered, phi)
identical = all(torch.equal(a, b) for other in gathered for a, b in zip(gathered[0], other))
if rank == 0:
    out = sys.argv[1] if len(sys.argv) > 1 else "sema_ddp.pt"
    torch.save(sema.state_dict(), out)                  # keys without "module.": loads anywhere
    print(f"φ identical on all {world} ranks: {identical}")
dist.barrier()                                          # every rank done before the group goes
dist.destroy_process_group()
sys.exit(0 if identical else 1)
