"""Shared test set-up: paths, and small tensors on few threads so the suite suits 2 cores."""
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "app_pages"  # the one place that names the page folder (see docs/ARCHITECTURE.md)

torch.set_num_threads(1)  # tests are many and small; one thread each avoids oversubscription


@pytest.fixture
def root() -> Path:
    return ROOT
