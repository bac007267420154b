"""The averagers under 2-process DDP and FSDP2 (gloo on the CPU, file:// rendezvous), each
checked against a single-process run on the global batch."""
import os
import sys
import tempfile
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from sema_demo import SwitchEMA

WORLD = 2
STEPS, SWITCH_EVERY, ALPHA = 12, 4, 0.8

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")


class RunningMean(nn.Module):
    """Identity whose buffer tracks the mean input, as BatchNorm's running_mean does; unlike
    BatchNorm it does not couple the examples of a batch, so 2 ranks × half a batch train
    exactly like one process on the whole batch."""

    def __init__(self, n: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(n))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.mean.lerp_(x.mean(0), self.momentum)
        return x


def stat_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), RunningMean(8), nn.Tanh(), nn.Linear(8, 2))


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))


def global_batches(features: int = 4, classes: int = 2, n: int = 16):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g))
            for _ in range(STEPS)]


def train(model, forward, sema, rank=None, batches=None):
    """SGD with momentum, SEMA switching every SWITCH_EVERY steps; rank r takes its half of each batch."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step, (x, y) in enumerate(batches or global_batches()):
        if rank is not None:
            x, y = x.chunk(WORLD)[rank], y.chunk(WORLD)[rank]
        F.cross_entropy(forward(x), y).backward()
        opt.step()
        opt.zero_grad()
        sema.update()
        if (step + 1) % SWITCH_EVERY == 0:
            sema.switch()
    return opt


def _init(rank: int, rendezvous: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)


def _ddp_worker(rank: int, rendezvous: str, out: str, buffers: str) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP
    _init(rank, rendezvous)
    try:
        results = {}
        # the single-process comparison: no cross-example coupling, each rank's own buffers
        model = stat_model()
        ddp = DDP(model, forward_sync_buffers=False)
        sema = SwitchEMA(ddp, ALPHA, buffers=buffers)        # the wrapper itself: unwrapped inside
        train(ddp, ddp, sema, rank)
        results["stat_phi"] = sema.module.state_dict()
        # BatchNorm, DDP's defaults: θ's statistics differ by rank, φ's must not after a switch
        model = bn_model()
        ddp = DDP(model)
        sema = SwitchEMA(model, ALPHA, buffers=buffers)
        train(ddp, ddp, sema, rank)
        results["bn_phi"] = sema.module.state_dict()
        results["bn_theta"] = {k: v.clone() for k, v in model.state_dict().items()}
        with sema.swap():                                  # evaluation copy: synced, on every rank
            results["bn_swapped"] = {k: v.clone() for k, v in model.state_dict().items()}
        torch.save(results, os.path.join(out, f"ddp{rank}.pt"))
        dist.barrier()      # both ranks done before the group goes (see the FSDP2 worker)
    finally:
        dist.destroy_process_group()


def _fsdp_worker(rank: int, rendezvous: str, out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    _init(rank, rendezvous)
    try:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))   # 7 rows: shards of 4 and 3
        mesh = init_device_mesh("cpu", (WORLD,))
        for layer in (model[0], model[2]):
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        sema = SwitchEMA(model, ALPHA)
        shard_rows = model[0].weight.to_local().shape[0]
        try:
            sema.module
            has_module = True
        except RuntimeError:
            has_module = False
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        state_kept = []
        for step, (x, y) in enumerate(global_batches(5, 3)):
            x, y = x.chunk(WORLD)[rank], y.chunk(WORLD)[rank]
            F.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad()
            sema.update()
            if (step + 1) % SWITCH_EVERY == 0:
                before = {id(p): opt.state[p]["momentum_buffer"].to_local().clone() for p in model.parameters()}
                sema.switch()
                state_kept.append(all(torch.equal(opt.state[p]["momentum_buffer"].to_local(), before[id(p)])
                                      for p in model.parameters()))
        theta = {n: p.full_tensor() for n, p in model.named_parameters()}
        with sema.swap():
            phi = {n: p.full_tensor() for n, p in model.named_parameters()}
        restored = all(torch.equal(p.full_tensor(), theta[n]) for n, p in model.named_parameters())
        torch.save({"theta": theta, "phi": phi, "shard_rows": shard_rows, "has_module": has_module,
                    "state_kept": state_kept, "restored": restored,
                    "keys": sorted(sema.state_dict()["module"])}, os.path.join(out, f"fsdp{rank}.pt"))
        dist.barrier()      # both ranks done with every collective before the group goes (a loaded
                            # machine once aborted a rank that tore down while its peer still sent)
    finally:
        dist.destroy_process_group()


def spawn(worker, tmp_path, *args):
    # An AppTest run earlier in this process leaves its page script as sys.modules["__main__"]
    # (Streamlit's script runner installs its own module there and never puts the old one back),
    # and a "spawn" child re-runs the __main__ of its parent: here, that page script, which fails
    # outside Streamlit.  The children need no main module (the worker is imported from this file).
    main, sys.modules["__main__"] = sys.modules["__main__"], types.ModuleType("__main__")
    try:
        mp.start_processes(worker, args=(str(tmp_path / "rendezvous"), str(tmp_path), *args), nprocs=WORLD,
                           join=True, start_method="spawn")
    finally:
        sys.modules["__main__"] = main


def _hello_worker(rank, rendezvous, out):
    with open(os.path.join(out, f"hello{rank}"), "w") as f:
        f.write(str(rank))


def _a_page():
    import streamlit as st
    st.write("a page")


@pytest.mark.timeout(120)
def test_the_ranks_start_after_a_page_ran_in_the_same_process(tmp_path):
    """AppTest leaves its page as ``sys.modules["__main__"]``; the spawned ranks must not re-run it
    (the DDP test once failed, in whichever pytest worker had run a page test before it)."""
    from streamlit.testing.v1 import AppTest
    AppTest.from_function(_a_page).run()
    page = sys.modules["__main__"]                                   # the page is __main__ now
    assert "_a_page" in page.__dict__ and page.__file__.startswith(tempfile.gettempdir())
    spawn(_hello_worker, tmp_path)
    assert sorted(p.read_text() for p in tmp_path.glob("hello*")) == ["0", "1"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("buffers", ["copy", "average"])
def test_ddp_phi_is_identical_on_both_ranks_and_matches_one_process_on_the_global_batch(tmp_path, buffers):
    spawn(_ddp_worker, tmp_path, buffers)
    ranks = [torch.load(tmp_path / f"ddp{r}.pt") for r in range(WORLD)]
    # parameters and buffers of φ identical on both ranks (BatchNorm included, after switches)
    for key in ("stat_phi", "bn_phi", "bn_swapped"):
        for name, t in ranks[0][key].items():
            assert torch.equal(t, ranks[1][key][name]), (key, name)
    # …although each rank updates its own BatchNorm statistics (what the sync is for): with "copy"
    # θ's differ; with "average" the last switch wrote the synced φ statistics into θ
    theta = [r["bn_theta"]["1.running_var"] for r in ranks]
    assert torch.equal(*theta) == (buffers == "average")
    # one process on the whole batch: the same φ, buffers included
    model = stat_model()
    sema = SwitchEMA(model, ALPHA, buffers=buffers)
    train(model, model, sema)
    for name, t in sema.module.state_dict().items():
        torch.testing.assert_close(ranks[0]["stat_phi"][name], t, rtol=0, atol=1e-6)
    assert set(ranks[0]["stat_phi"]) == set(model.state_dict())      # no "module." prefix


@pytest.mark.timeout(240)
def test_fsdp2_local_shard_average_matches_one_process_and_switching_keeps_the_optimizer_state(tmp_path):
    spawn(_fsdp_worker, tmp_path)
    ranks = [torch.load(tmp_path / f"fsdp{r}.pt") for r in range(WORLD)]
    assert [r["shard_rows"] for r in ranks] == [4, 3]               # uneven shards
    assert not any(r["has_module"] for r in ranks)                   # φ is local shards, no module
    assert all(all(r["state_kept"]) and len(r["state_kept"]) == STEPS // SWITCH_EVERY for r in ranks)
    assert all(r["restored"] for r in ranks)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    sema = SwitchEMA(model, ALPHA)
    train(model, model, sema, batches=global_batches(5, 3))
    assert ranks[0]["keys"] == sorted(n for n, _ in model.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(ranks[0]["theta"][name], p.detach(), rtol=0, atol=1e-6)
        torch.testing.assert_close(ranks[0]["phi"][name], sema.module.state_dict()[name], rtol=0, atol=1e-6)
