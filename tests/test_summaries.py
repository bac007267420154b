"""The computed sentences of the live-training pages: per-seed measures, paired verdicts, notices,
and the live pace (sema_demo.charts.summaries, sema_demo.ui.training's clock)."""
import pandas as pd
import pytest

from sema_demo.charts import summaries


def history(curves: dict[str, list[list[float]]], diverged=()) -> pd.DataFrame:
    """curves[method][seed] = test accuracy per epoch (0–1); (method, seed) in ``diverged`` blows up last."""
    rows = []
    for method, seeds in curves.items():
        for seed, accs in enumerate(seeds):
            for epoch, acc in enumerate(accs, start=1):
                bad = (method, seed) in diverged and epoch == len(accs)
                rows.append({"epoch": epoch, "method": method, "seed": seed, "train_loss": 1 - acc,
                             "train_acc": acc, "test_loss": float("nan") if bad else 1 - acc,
                             "test_acc": float("nan") if bad else acc, "switched": method == "sema",
                             "diverged": bad, "seconds": 0.1})
    return pd.DataFrame(rows)


def steady(final: float, n: int = 5, epochs: int = 4) -> list[list[float]]:
    return [[final * (e + 1) / epochs + 0.001 * s for e in range(epochs)] for s in range(n)]


def test_final_accuracy_verdict_follows_the_paired_interval_and_names_the_seeds():
    clear = summaries.results_text(history({"sgd": steady(0.80), "sema": steady(0.95)}), 0.5)
    assert "**The question here is the final test accuracy.**" in clear
    assert "SEMA − SGD final test accuracy (points): +15.0" in clear and "(95 % paired t, 5 seeds): SEMA is better." \
        in clear
    behind = summaries.results_text(history({"sgd": steady(0.95), "sema": steady(0.80)}), 0.5)
    assert "SGD is better." in behind and "SEMA is better" not in behind
    noisy = summaries.results_text(history({"sgd": [[0.8], [0.9], [0.7], [0.85], [0.8]],
                                            "sema": [[0.9], [0.7], [0.8], [0.8], [0.85]]}), 0.5)
    assert "no clear winner" in noisy


def test_below_five_seeds_nothing_is_called_better():
    text = summaries.results_text(history({"sgd": steady(0.5, n=3), "sema": steady(0.99, n=3)}), 0.5)
    assert "3 seeds): too few seeds to tell" in text and "is better" not in text
    assert "With 3 seeds no difference is called real" in text


def test_speed_counts_runs_that_never_reach_the_target_and_says_so():
    h = history({"ema": [[0.5, 0.96, 0.97]] * 5,
                 "sema": [[0.5, 0.6, 0.96]] * 4 + [[0.5, 0.6, 0.7]]})
    text = summaries.results_text(h, 0.95, "speed")
    assert text.startswith("**The question here is speed:**")
    assert "EMA 5 of 5 (mean 2.0 epochs)" in text and "SEMA 4 of 5 (mean 3.0 epochs; never: seed 4)" in text
    assert "A seed that never reaches 95% counts as 4 epochs." in text
    assert "SEMA − EMA epochs to 95%: +1.2" in text and "EMA is better." in text     # (1+1+1+1+2) / 5


def test_stability_measures_the_fall_below_its_own_best_and_a_diverged_run_at_chance():
    sgd = [[0.9, 0.98, 0.99, 0.6]] + [[0.9, 0.98, 0.99, 0.99]] * 4          # seed 0 collapses at the end
    h = history({"sgd": sgd, "sema": [[0.9, 0.98, 0.99, 0.99]] * 5}, diverged={("sema", 4)})
    fall, where = summaries.largest_fall(h, chance=0.5)
    assert fall.loc["sgd", 0] == pytest.approx(39.0) and where.loc["sgd", 0] == 4
    assert fall.loc["sema", 4] == pytest.approx(49.0)                     # diverged: from 99 % to chance
    text = summaries.results_text(h, 0.95, "stability", chance=0.5)
    assert "SGD 1 of 5 (worst: seed 0, 39.0 points by epoch 4)" in text and "A diverged run counts at chance (50 %)" \
        in text
    assert summaries.seed_label(h, 0, 0.5) == "seed 0 · SGD fell 39.0 points"
    assert summaries.seed_label(h, 1, 0.5) == "seed 1"


def test_identity_reports_the_largest_gap():
    same = summaries.results_text(history({"sgd": steady(0.9), "ema": steady(0.9), "sema": steady(0.9)}), 0.5,
                                  "identity")
    assert "is 0.0 points: they are the same run" in same
    differ = summaries.results_text(history({"sgd": steady(0.9), "sema": steady(0.8)}), 0.5, "identity")
    assert "10.0 points: they differ" in differ


def test_the_notice_is_computed_from_the_setting_and_the_numbers():
    h = history({"sgd": [[0.9, 0.99, 0.5]] + [[0.9, 0.99, 0.99]] * 4, "ema": steady(0.9, epochs=3),
                 "sema": steady(0.95, epochs=3)})
    zero = summaries.notice_text(h, "identity", 0.95, alpha=0.0, switch_steps=25)
    assert "α = 0" in zero and "trails" not in zero and "lags" not in zero
    assert "Measured: the largest gap is" in zero
    stable = summaries.notice_text(h, "stability", 0.95, alpha=0.95, switch_steps=25, so_far=True)
    assert "α = 0.95 averages over ≈ 20 steps; SEMA copies φ back into θ every 25 steps." in stable
    assert "So far (epoch 3) the deepest fall is SGD's in seed 0: 49.0 points" in stable
    assert "Pick seed 0 under **Seed shown**" in stable and "EMA and SEMA fell at most 10 points" in stable
    slow = summaries.notice_text(h, "speed", 0.95, alpha=0.99, switch_steps=25)
    assert "remembers ≈ 4.0 switch intervals back" in slow
    assert "SGD was first on average (2.0 epochs). EMA and SEMA did not reach it in every seed." in slow


def test_a_paced_run_trains_what_the_clock_says_and_at_least_one_epoch():
    from types import SimpleNamespace

    from sema_demo.ui.training import MIN_TICK, LiveRun, epochs_due, tick_every

    assert tick_every(None, 0.4) == 0.4 and tick_every(2.0, 0.4) == 0.5 and tick_every(10.0, 0.4) == MIN_TICK
    live = LiveRun(settings=None, trainer=SimpleNamespace(epoch=0))
    assert epochs_due(live, 2.0, now=100.0) == 1                    # Play: one epoch at once
    live.trainer.epoch = 1
    assert epochs_due(live, 2.0, now=100.1) == 1                    # too early: still one (AppTest reruns advance)
    live.trainer.epoch = 2
    assert epochs_due(live, 2.0, now=103.0) == 5                    # 3 s later at 2 epochs/s: 7 due, 2 done
    assert epochs_due(live, 0.5, now=103.0) == 1                    # a new speed counts from now
