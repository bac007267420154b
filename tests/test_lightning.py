"""The Lightning callback under Trainer(accelerator="cpu", devices=2, strategy="ddp",
accumulate_grad_batches=2), through the example that the README shows."""
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("lightning")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "lightning_sema.py"), "--out", str(out)],
                          cwd=out, env=env, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed run identical: True" in done.stdout
    return torch.load(out / "results.pt", weights_only=False)


@pytest.mark.timeout(600)
def test_updates_count_optimizer_steps_and_switches_count_epochs(results):
    from examples.lightning_sema import ACCUMULATE, EPOCHS
    straight = results["straight"]
    assert straight["world_size"] == 2
    steps_per_epoch = math.ceil(straight["steps_per_epoch"] / ACCUMULATE)     # optimizer steps, not batches
    assert straight["steps_per_epoch"] == 4 and steps_per_epoch == 2
    assert straight["updates"] == EPOCHS * steps_per_epoch
    assert straight["switches"] == EPOCHS


@pytest.mark.timeout(600)
def test_validation_runs_on_phi(results):
    straight = results["straight"]
    seen, validated = straight["seen"], straight["validation_weights"]
    assert len(validated) == len(seen) == 4
    for (theta, phi), weights in zip(seen, validated):
        assert weights == pytest.approx(phi, rel=1e-12) and abs(theta - phi) > 1e-6


@pytest.mark.timeout(600)
def test_checkpoint_follows_weight_averaging_conventions_and_resumes_exactly(results):
    checkpoint = results["checkpoint"]
    assert set(checkpoint["state_dict"]) == set(checkpoint["current_model_state"])       # φ and θ, same keys
    assert checkpoint["averaging_state"]["num_updates"] == 4 and checkpoint["averaging_state"]["num_switches"] == 2
    assert checkpoint["averaging_state"]["warmup"] == "linear"
    straight, resumed = results["straight"], results["resumed"]
    assert (resumed["updates"], resumed["switches"]) == (straight["updates"], straight["switches"])
    for key in ("theta", "phi"):
        for name, t in straight[key].items():
            assert torch.equal(t, resumed[key][name]), (key, name)
