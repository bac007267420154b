"""Shared test set-up: paths, and small tensors on few threads so the suite suits 2 cores."""
from pathlib import Path

import pytest
import torch
from project_paths import PAGES_DIR, ROOT  # noqa: F401  (tests import both from here)

torch.set_num_threads(1)  # tests are many and small; one thread each avoids oversubscription


@pytest.fixture
def root() -> Path:
    return ROOT
