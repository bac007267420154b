"""SEMA in a plain PyTorch loop: warm-up, evaluation on φ with swap(), a checkpoint.

    python examples/plain_loop.py
"""
import torch
import torch.nn.functional as F
from torch import nn

from sema_demo import SwitchEMA

torch.manual_seed(0)
y = torch.arange(512) % 2
x = torch.randn(512, 2) + (y[:, None] * 2 - 1)
model = nn.Sequential(nn.Linear(2, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
steps_per_epoch = 512 // 32
# Build the averager AFTER loading any weights into the model (or call sema.reset() after).
sema = SwitchEMA(model, momentum=0.99, warmup="linear", warmup_steps=2 * steps_per_epoch)

for epoch in range(5):
    model.train()
    for batch in torch.randperm(512).split(32):
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
        optimizer.zero_grad()
        sema.update()                    # after every optimizer step
    sema.switch()                        # θ ← φ: the one line that makes EMA SEMA
    model.eval()
    with torch.no_grad(), sema.swap():   # φ in the live model; θ restored after
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    print(f"epoch {epoch + 1}: accuracy of φ {accuracy:.3f}")

checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "sema": sema.state_dict()}
resumed = SwitchEMA(model, momentum=0.99)
resumed.load_state_dict(checkpoint["sema"])          # φ, α, the warm-up and the counters
assert resumed.num_updates == sema.num_updates and resumed.warmup == "linear"
print("checkpoint round trip ok")
