"""Every recipe under examples/ runs (the Lightning one is run, and checked in depth, by
tests/test_lightning.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(450)
def test_plain_loop_example_runs(tmp_path):
    out = run([str(EXAMPLES / "plain_loop.py")], tmp_path)
    assert "epoch 5: accuracy of φ" in out and "checkpoint round trip ok" in out


@pytest.mark.timeout(450)
def test_torchrun_ddp_example_runs_on_two_processes_and_phi_agrees(tmp_path):
    out = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(EXAMPLES / "ddp_torchrun.py"), str(tmp_path / "sema.pt")], tmp_path)
    assert "φ identical on all 2 ranks: True" in out
    state = torch.load(tmp_path / "sema.pt")
    assert state["num_switches"] == 3 and not any(k.startswith("module.") for k in state["module"])


@pytest.mark.timeout(450)
def test_accelerate_example_runs_and_restores_the_averager(tmp_path):
    out = run([str(EXAMPLES / "accelerate_sema.py"), str(tmp_path / "state")], tmp_path)
    assert "24 updates for 48 batches (accumulation 2); checkpoint restored" in out


def test_every_example_is_run_by_a_test():
    tested = (Path(__file__).read_text() + (ROOT / "tests" / "test_lightning.py").read_text())
    for example in EXAMPLES.glob("*.py"):
        if example.name != "__init__.py":
            assert example.name in tested, example.name
