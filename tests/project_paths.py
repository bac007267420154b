"""Paths that tests and benchmarks share; importing this has no side effects (conftest.py sets threads)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "app_pages"  # the one place that names the page folder (see docs/ARCHITECTURE.md)
