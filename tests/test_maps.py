"""The measured map: its cells (variants of one engine run) against independently trained runs."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from sema_demo.maps import cell_count, ema_name, map_config, measured_map, run_outcomes, sema_name
from sema_demo.models import mlp
from sema_demo.training import Data, TrainConfig, Trainer, Variant
from tests.test_training import blobs, weights

ALPHAS, KS, SEEDS = (0.5, 0.9), (1, 2), (0, 1, 2)
BASE = TrainConfig(epochs=5, batch_size=16, optimizer="momentum", lr=0.2, device="cpu")


def model_fn():
    return mlp(2, (8,), 2).double()


@pytest.mark.parametrize("batched", [True, False])
def test_map_cells_equal_independently_trained_runs(batched):
    """One run holding every (α, K) as a variant = one plain run per (α, K), weight for weight;
    so the map's paired differences are the differences of the independent runs."""
    data = blobs(dtype=torch.float64)
    together = Trainer(data, model_fn, map_config(BASE, ALPHAS, KS, SEEDS), batched=batched)
    frame = together.run()
    assert len(together.runs) == cell_count(ALPHAS, KS, SEEDS) == 3 * (1 + 2 * 3)
    for a in ALPHAS:
        for k in KS:
            alone = Trainer(data, model_fn, TrainConfig(**{**BASE.__dict__, "methods": ("sgd", "ema", "sema"),
                                                           "seeds": SEEDS, "ema_momentum": a, "switch_epochs": k}),
                            batched=batched)
            single = alone.run()
            for method, name in (("sgd", "sgd"), ("ema", ema_name(a)), ("sema", sema_name(a, k))):
                for s in SEEDS:
                    torch.testing.assert_close(weights(together.models()[(name, s)]),
                                               weights(alone.models()[(method, s)]), rtol=0, atol=1e-12)
                mine = frame[frame.method == name].reset_index(drop=True)
                theirs = single[single.method == method].reset_index(drop=True)
                assert (mine.switched == theirs.switched).all() and np.allclose(mine.test_acc, theirs.test_acc)


def test_paired_differences_are_the_differences_of_the_runs():
    data = blobs(dtype=torch.float64)
    result = measured_map(data, model_fn, BASE, ALPHAS, KS, SEEDS, target=0.9)
    runs = result.runs.set_index(["name", "seed"])
    for i, a in enumerate(ALPHAS):
        for j, k in enumerate(KS):
            sema = np.array([runs.loc[(sema_name(a, k), s), "final_acc"] for s in SEEDS])
            ema = np.array([runs.loc[(ema_name(a), s), "final_acc"] for s in SEEDS])
            sgd = np.array([runs.loc[("sgd", s), "final_acc"] for s in SEEDS])
            assert result.cells["acc_vs_ema"][i][j].mean == pytest.approx((sema - ema).mean())
            assert result.cells["acc_vs_sgd"][i][j].mean == pytest.approx((sema - sgd).mean())
            assert result.cells["acc_vs_ema"][i][j].n == len(SEEDS)
    assert result.grid("acc_vs_ema").shape == (2, 2) and result.significant("speed_vs_sgd").dtype == bool
    frame = result.frame()
    assert len(frame) == 4 * 4 and set(frame.interval) == {"paired t"}


def test_outcomes_count_a_diverged_run_at_chance_and_a_slow_one_as_censored():
    history = pd.DataFrame({"epoch": [1, 2, 1, 2], "method": ["a", "a", "b", "b"], "seed": 0,
                            "test_acc": [0.5, 0.97, 0.6, math.nan], "diverged": [False, False, False, True]})
    out = run_outcomes(history, epochs=2, target=0.95, n_classes=2).set_index("name")
    assert out.loc["a", "final_acc"] == 0.97 and out.loc["a", "epochs_to_target"] == 2
    assert out.loc["b", "final_acc"] == 0.5 and out.loc["b", "epochs_to_target"] == 3


def test_variants_are_checked():
    with pytest.raises(ValueError, match="variant"):
        TrainConfig(methods=("x",), variants={"x": Variant("nope")})
    with pytest.raises(ValueError, match="variant"):
        TrainConfig(methods=("x",), variants={"x": Variant("sema", ema_momentum=1.0)})
    with pytest.raises(ValueError, match="seeds"):
        measured_map(blobs(), model_fn, BASE, ALPHAS, KS, (0,), target=0.9)


def test_toy_page_map_tab_computes_on_request_and_marks_cells():
    from streamlit.testing.v1 import AppTest

    from conftest import PAGES_DIR
    at = AppTest.from_file(str(PAGES_DIR / "toy_datasets.py"), default_timeout=300)
    for key, value in {"size": 100, "epochs": 5, "seeds": 1, "width": 8, "batch": 40}.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception
    button = [b for b in at.button if b.key == "toy_map_run"]
    assert button and "248 networks" in button[0].label
    button[0].click().run()
    assert not at.exception
    notice = " ".join(i.value for i in at.info if "cells" in i.value)
    assert "of 25 cells" in notice and "8 seeds per cell" in notice
    at.radio(key="toy_map_view").set_value("Epochs saved vs SGD").run()
    assert not at.exception and "epochs saved by SEMA vs SGD" in " ".join(i.value for i in at.info)
    assert not [b for b in at.button if b.key == "toy_map_run"], "the map is kept for this setting"
