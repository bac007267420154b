"""The scoreboard: verdict rules on hand-made inputs, the measures, the command and the shipped report."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sema_demo import claims
from sema_demo.claims import (TOY_DEFAULT, SettingResult, check_report, cost_row, equivalence_verdict, load_report,
                              report_markdown, setting_rows, smoothness, superiority_verdict, write_report)

SHIPPED = Path(__file__).resolve().parents[1] / "docs" / "claims"


@pytest.mark.parametrize("low, high, verdict", [
    (0.2, 0.9, "supported"),            # above 0 and beyond the margin
    (0.02, 0.9, "supported"),           # above 0, reaching past the margin
    (-0.9, -0.2, "not supported"),      # below 0
    (0.01, 0.04, "not supported"),      # entirely within ±0.05: negligible
    (-0.04, 0.03, "not supported"),     # negligible either way
    (-0.3, 0.6, "inconclusive"),        # straddles 0 and reaches past the margin
    (-0.3, 0.02, "inconclusive"),
    (-math.inf, math.inf, "inconclusive"),
    (math.nan, math.nan, "inconclusive"),
])
def test_superiority_rule_every_branch(low, high, verdict):
    assert superiority_verdict(low, high, margin=0.05) == verdict


@pytest.mark.parametrize("low, high, verdict", [
    (-0.03, 0.02, "supported"),         # any extra cost is below the 5 % margin
    (0.1, 0.3, "supported"),            # cheaper, even
    (-0.4, -0.1, "not supported"),      # surely more than 5 % extra
    (-0.2, 0.01, "inconclusive"),
    (math.nan, 0.0, "inconclusive"),
])
def test_equivalence_rule_every_branch(low, high, verdict):
    assert equivalence_verdict(low, high, margin=0.05) == verdict


def test_smoothness_of_a_hand_made_ramp():
    """p = (x + 1)/2 on [−1, 1]²: |∇p| = 0.5 everywhere and the 0.5 contour is the segment x = 0, length 2."""
    xs = np.linspace(-1, 1, 41)
    p = np.tile((xs + 1) / 2, (41, 1))
    grad, length = smoothness(np.stack([1 - p, p], axis=-1), (-1, 1, -1, 1))
    assert grad == pytest.approx(0.5) and length == pytest.approx(2.0)
    assert smoothness(np.full((20, 20), 0.9), (-1, 1, -1, 1)) == (pytest.approx(0.0), 0.0)


def hand_made_runs():
    """SEMA better everywhere by a clear margin, on 6 seeds with small noise."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(6):
        e = rng.normal(0, 0.01)
        rows += [{"method": "sgd", "seed": seed, "final_acc": 0.80 + e, "epochs_to_target": 20 + seed % 2,
                  "lambda_max": 4 + e, "trace": 9 + e, "width": 0.2 + e, "depth": 0.3 + e, "gradient_norm": 1 + e,
                  "contour_length": 8 + e},
                 {"method": "ema", "seed": seed, "final_acc": 0.85 + e, "epochs_to_target": 18, "lambda_max": 3,
                  "trace": 8, "width": 0.3, "depth": 0.25 + e, "gradient_norm": 0.9, "contour_length": 7},
                 {"method": "sema", "seed": seed, "final_acc": 0.90 + e, "epochs_to_target": 10, "lambda_max": 2 + e,
                  "trace": 6, "width": 0.4 + e, "depth": 0.1 + e, "gradient_norm": 0.5, "contour_length": 5 + e}]
    return SettingResult(TOY_DEFAULT, tuple(range(6)), pd.DataFrame(rows))


def test_rows_of_a_setting_compute_effects_and_verdicts_from_the_numbers():
    rows = {r.id: r for r in setting_rows(hand_made_runs())}
    assert sorted(rows) == sorted(f"{i}-toy" for i in ("1", "2", "3", "4a", "4b", "4c", "5", "6a", "6b"))
    assert all(r.verdict == "supported" and r.seeds == 6 and r.effect > 0 for r in rows.values())
    assert rows["1-toy"].effect == pytest.approx(10.5)                    # epochs saved
    assert rows["2-toy"].effect == pytest.approx(0.10)                    # accuracy points (as a fraction)
    assert rows["4a-toy"].effect == pytest.approx(0.5, abs=0.01)          # (4 − 2) ÷ 4
    assert rows["5-toy"].page == "landscape" and rows["6a-toy"].page == "toy"
    # flip SEMA and SGD: the paper's side loses, and the rule says so
    flipped = hand_made_runs()
    flipped.per_run["method"] = flipped.per_run["method"].replace({"sema": "sgd", "sgd": "sema"})
    assert {r.id: r.verdict for r in setting_rows(flipped)}["2-toy"] == "not supported"


def test_cost_row_is_an_equivalence_on_the_paired_timing_rounds():
    same = {"sgd": [1.0] * 5, "ema": [1.1, 1.2, 1.1, 1.2, 1.1], "sema": [1.1, 1.21, 1.1, 1.19, 1.11]}
    row = cost_row(same)
    assert row.id == "7" and row.verdict == "supported" and row.seeds == 5
    slow = {**same, "sema": [2.2, 2.4, 2.2, 2.4, 2.2]}
    assert cost_row(slow).verdict == "not supported" and cost_row(slow).effect == pytest.approx(-1.0)


def test_report_is_written_atomically_and_reads_back(tmp_path):
    report = {"claims": [claims.asdict(r) for r in setting_rows(hand_made_runs())], "versions": claims.versions(),
              "wall_s": 1.0, "quick": True, "seeds": list(range(6)), "command": claims.QUICK_COMMAND,
              "settings": {"toy": claims.asdict(TOY_DEFAULT)}}
    paths = write_report(report, tmp_path / "out")
    assert [p.name for p in paths] == ["claims.json", "claims.md"] and not list((tmp_path / "out").glob(".tmp-*"))
    assert load_report(paths[0]) == json.loads(paths[0].read_text()) and check_report(report) == []
    assert "| 2-toy |" in paths[1].read_text() and "supported" in report_markdown(report)
    assert load_report(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert load_report(tmp_path / "bad.json") is None


def _recomputed(c):
    low, high = c["ci"]
    if c["id"] == "7":
        return equivalence_verdict(low, high, 0.05)
    margin = 1.0 if c["id"].startswith("1-") else 0.005 if c["id"][0] in "23" else 0.05
    return superiority_verdict(low, high, margin)


def test_the_shipped_report_is_well_formed_and_its_verdicts_follow_from_its_numbers():
    report = load_report(SHIPPED / "claims.json")
    assert report is not None and check_report(report) == []
    assert report["command"] == claims.COMMAND and report["versions"]["torch"]
    ids = [c["id"] for c in report["claims"]]
    assert {i.split("-")[0] for i in ids} == {"1", "2", "3", "4a", "4b", "4c", "5", "6a", "6b", "7"}
    for c in report["claims"]:
        assert c["verdict"] == _recomputed(c), c["id"]          # no verdict typed by hand
        assert c["ci"][0] <= c["effect"] <= c["ci"][1]
    assert (SHIPPED / "claims.md").read_text() == report_markdown(report)


def test_quick_command_writes_a_report_with_the_shipped_schema(tmp_path):
    """`sema-demo claims --quick` (within the issue's 5 minutes) reproduces the shipped rows' schema."""
    done = subprocess.run([sys.executable, "-m", "sema_demo", "claims", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = load_report(tmp_path / "claims.json")
    shipped = load_report(SHIPPED / "claims.json")
    assert check_report(report) == [] and report["quick"] is True
    assert [c["id"] for c in report["claims"]] == [c["id"] for c in shipped["claims"]]
    assert all(set(a) == set(b) for a, b in zip(report["claims"], shipped["claims"]))
    assert "Wrote" in done.stdout and (tmp_path / "claims.md").exists()


def test_the_shipped_report_and_the_help_state_the_full_budget():
    """The shipped report is the full run of today's budget, and `sema-demo claims --help` says its size."""
    shipped = load_report(SHIPPED / "claims.json")
    assert shipped["quick"] is False and shipped["seeds"] == list(claims.FULL.seeds)
    cost = next(c for c in shipped["claims"] if c["id"] == "7")
    assert cost["seeds"] == claims.FULL.cost_repeats and f"{claims.COST_EPOCHS} epochs" in cost["measure"]
    done = subprocess.run([sys.executable, "-m", "sema_demo", "claims", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and f"Full: {len(claims.FULL.seeds)} seeds" in " ".join(done.stdout.split())
