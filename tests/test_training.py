"""The training engine: fairness (same init, batches, augmentation), SEMA switching against a
hand-written loop, the batched MLP path against the per-run path with the real averagers,
pause/resume, divergence and input checks."""
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sema_demo.averaging import SwitchEMA
from sema_demo.models import mlp, small_cnn
from sema_demo.training import (HISTORY_COLUMNS, Data, TrainConfig, Trainer, batch_order, is_plain_mlp,
                                learning_rate)

ALL_METHODS = ("sgd", "ema", "sema", "swa", "lookahead")


def blobs(n=48, n_test=16, seed=0, dtype=torch.float32):
    """Two small Gaussian blobs in 2D: enough to train on in milliseconds."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n + n_test) % 2
    x = torch.randn(n + n_test, 2, generator=g, dtype=dtype) * 0.7 + (y[:, None] * 2 - 1).to(dtype)
    return Data(x[:n], y[:n], x[n:], y[n:], n_classes=2, name="blobs")


def weights(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu()


class Recorder(nn.Module):
    """A tiny network (not a plain MLP, so the generic path runs) that logs its training inputs."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().cpu())
        return self.net(x)


def test_every_method_of_a_seed_starts_from_the_same_weights():
    config = TrainConfig(methods=ALL_METHODS, seeds=(0, 1), epochs=1)
    for batched in (False, True):
        models = Trainer(blobs(), lambda: mlp(2, (8,), 2), config, batched=batched).models()
        for seed in (0, 1):
            first = weights(models[("sgd", seed)])
            assert all(torch.equal(weights(models[(m, seed)]), first) for m in ALL_METHODS)
            # ... which are exactly torch.manual_seed(seed) then model_fn()
            torch.manual_seed(seed)
            assert torch.equal(first, weights(mlp(2, (8,), 2)))
        assert not torch.equal(weights(models[("sgd", 0)]), weights(models[("sgd", 1)]))


def test_every_method_of_a_seed_sees_the_same_batches_and_augmentation_draws():
    def augment(x, generator):
        return x + torch.randn(x.shape, generator=generator, device=generator.device)

    data = blobs(n=20)
    data.augment = augment
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1), epochs=2, batch_size=8)
    trainer = Trainer(data, Recorder, config)
    assert not trainer.batched
    engine_runs = trainer._engine.runs
    trainer.run()
    seen = {r: engine_runs[r].model.seen for r in trainer.runs}
    assert len(seen[("sgd", 0)]) == 2 * 3                          # 2 epochs × ceil(20 / 8) steps
    for seed in (0, 1):
        ref = seen[("sgd", seed)]
        for method in ("ema", "sema"):
            assert all(torch.equal(a, b) for a, b in zip(seen[(method, seed)], ref))
    assert not torch.equal(seen[("sgd", 0)][0], seen[("sgd", 1)][0])  # seeds shuffle differently
    # the augmentation really drew noise: the batch is not a plain subset of the data
    assert not any(torch.equal(seen[("sgd", 0)][0][0], row) for row in data.x_train)


def test_batch_order_is_a_permutation_fixed_by_seed_and_epoch():
    a = batch_order(50, seed=3, epoch=2)
    assert sorted(a.tolist()) == list(range(50))
    assert torch.equal(a, batch_order(50, 3, 2))
    assert not torch.equal(a, batch_order(50, 3, 3)) and not torch.equal(a, batch_order(50, 4, 2))


def reference_sema(data, config, seed):
    """SEMA written out by hand with the public averager and plain torch.optim."""
    torch.manual_seed(seed)
    model = mlp(2, (8,), 2)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.beta)
    sema = SwitchEMA(model, momentum=config.ema_momentum)
    n, b = len(data.x_train), config.batch_size
    for epoch in range(config.epochs):
        order = batch_order(n, seed, epoch)
        for k in range(math.ceil(n / b)):
            idx = order[k * b:(k + 1) * b]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sema.update()
        if (epoch + 1) % config.switch_epochs == 0:
            sema.switch()
    return model, sema


@pytest.mark.parametrize("batched", [False, True])
def test_sema_switches_at_the_right_epochs_like_a_hand_written_loop(batched):
    data = blobs()
    config = TrainConfig(methods=("sgd", "sema"), epochs=5, batch_size=16, switch_epochs=2, ema_momentum=0.8)
    trainer = Trainer(data, lambda: mlp(2, (8,), 2), config, batched=batched)
    frame = trainer.run()
    sema_rows = frame[frame.method == "sema"]
    assert sema_rows[sema_rows.switched].epoch.tolist() == [2, 4] == trainer.switch_epochs()
    assert not frame[frame.method == "sgd"].switched.any()
    model, sema = reference_sema(data, config, seed=0)
    assert sema.num_switches == 2
    torch.testing.assert_close(weights(trainer.models()[("sema", 0)]), weights(sema.module))
    # epoch 5 did not switch, so the live weights moved away from φ again
    assert not torch.allclose(weights(model), weights(sema.module))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "sigmoid"])
def test_batched_path_equals_per_run_path_with_the_real_averagers(optimizer, activation):
    """float64 on the CPU, so any difference in the algorithm (not rounding) would show.  (On CUDA,
    PyTorch's SWA averages with a float32 weight 1/(n + 1), a 1e-8 difference of its own.)"""
    config = TrainConfig(methods=ALL_METHODS, seeds=(0, 1), epochs=4, batch_size=16, optimizer=optimizer,
                         lr=0.01 if optimizer == "adam" else 0.1, ema_momentum=0.9, switch_epochs=2,
                         swa_start=1, lookahead_k=3, weight_decay=1e-3, schedule="cosine", grid_resolution=6,
                         device="cpu")
    data = blobs(dtype=torch.float64)
    model_fn = lambda: mlp(2, (8, 8), 2, activation).double()  # noqa: E731
    per_run = Trainer(data, model_fn, config, batched=False)
    batched = Trainer(data, model_fn, config, batched=True)
    a, b = per_run.run(), batched.run()
    metrics = ["train_loss", "train_acc", "test_loss", "test_acc"]
    assert a[["epoch", "method", "seed", "switched"]].equals(b[["epoch", "method", "seed", "switched"]])
    assert (a[metrics] - b[metrics]).abs().max().max() < 1e-12
    for run in per_run.runs:
        torch.testing.assert_close(weights(per_run.models()[run]), weights(batched.models()[run]),
                                   rtol=0, atol=1e-12)
        assert abs(per_run.grids[run] - batched.grids[run]).max() < 1e-6
    # the methods really differ from each other
    assert not torch.allclose(weights(batched.models()[("sgd", 0)]), weights(batched.models()[("ema", 0)]))


@pytest.mark.parametrize("batched", [False, True])
def test_ema_and_swa_live_weights_are_the_plain_optimizers_bit_for_bit(batched):
    """EMA and SWA never write their average back, so their θ is SGD's of the same seed, step for
    step; the batched path therefore trains it once per seed (and copies it), the generic path
    trains it three times: the same weights either way."""
    config = TrainConfig(methods=("ema", "sema", "sgd", "swa"), seeds=(0, 1), epochs=3, batch_size=8,
                         weight_decay=1e-3, device="cpu")
    trainer = Trainer(blobs(), lambda: mlp(2, (8, 8), 2), config, batched=batched)
    trainer.run()
    live = trainer._engine.state_rows(False)
    for seed in (0, 1):
        sgd = live[trainer.runs.index(("sgd", seed))]
        assert all(torch.equal(live[trainer.runs.index((m, seed))], sgd) for m in ("ema", "swa"))
        assert not torch.equal(live[trainer.runs.index(("sema", seed))], sgd)
    if batched:
        assert trainer._engine.trained == 2 * 2                  # SGD and SEMA of each seed


def test_metrics_along_either_layout_equal_cross_entropy_and_argmax_ties_included():
    """The engine's loss and hits (computed along the classes' layout in memory) are F.cross_entropy
    and argmax == y, a tie counting for the first class as argmax does."""
    from sema_demo.training import _loss_and_hits
    gen = torch.Generator().manual_seed(0)
    for classes in (2, 3):
        logits = torch.randn(4, 9, classes, generator=gen, dtype=torch.float64)
        logits[:, :3] = 0.0                                     # exact ties between all classes
        logits[:, 3, :2] = 1.5                                  # a tie between the first two
        y = torch.arange(9) % classes
        for view in (logits, logits.mT.contiguous().mT):      # class-last and class-first memory
            loss, hit = _loss_and_hits(view, y)
            expected = F.cross_entropy(logits.flatten(0, 1), y.repeat(4), reduction="none").view(4, 9)
            torch.testing.assert_close(loss, expected, rtol=0, atol=1e-12)
            assert torch.equal(hit, logits.argmax(-1) == y)


def test_batched_path_float32_stays_close_and_is_picked_for_plain_mlps():
    config = TrainConfig(seeds=(0, 1, 2), epochs=3, batch_size=8)
    per_run = Trainer(blobs(), lambda: mlp(2, (16, 16), 2), config, batched=False)
    auto = Trainer(blobs(), lambda: mlp(2, (16, 16), 2), config)
    assert auto.batched and not per_run.batched
    a, b = per_run.run(), auto.run()
    assert (a.test_loss - b.test_loss).abs().max() < 1e-4
    assert (a.test_acc - b.test_acc).abs().max() <= 1 / 16 + 1e-9   # at most one borderline point flips


def test_plain_mlp_detection():
    assert is_plain_mlp(mlp(2, (4, 4), 3, "gelu"))
    assert not is_plain_mlp(small_cnn(1, 10, 4))
    assert not is_plain_mlp(nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(), nn.Linear(4, 2)))
    assert not is_plain_mlp(nn.Sequential(nn.Linear(2, 4, bias=False), nn.Tanh(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="plain MLP"):
        Trainer(blobs(), Recorder, TrainConfig(epochs=1), batched=True)


@pytest.mark.parametrize("batched", [False, True])
def test_pause_and_resume_equals_an_uninterrupted_run(batched):
    config = TrainConfig(seeds=(0, 1), epochs=4, batch_size=16, grid_resolution=4)
    model_fn = lambda: mlp(2, (8,), 2)  # noqa: E731
    straight = Trainer(blobs(), model_fn, config, batched=batched)
    straight.run()
    paused = Trainer(blobs(), model_fn, config, batched=batched)
    paused.run_epoch()
    paused.run(callback=lambda rows: False)       # a callback returning False pauses after one epoch
    assert paused.epoch == 2 and not paused.done
    torch.randn(100)                               # other work in between must not matter
    paused.run()
    assert paused.done and paused.epoch == 4
    cols = [c for c in HISTORY_COLUMNS if c != "seconds"]
    assert straight.frame()[cols].equals(paused.frame()[cols])
    for run in straight.runs:
        assert torch.equal(weights(straight.models()[run]), weights(paused.models()[run]))
        assert (straight.grids[run] == paused.grids[run]).all()


def test_image_batches_train_a_cnn_on_the_generic_path():
    """4D inputs (channels_last + bf16 autocast when on CUDA), with seeded augmentation."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.randn(40, 1, 8, 8, generator=g) + y[:, None, None, None] * 1.5
    data = Data(x[:32], y[:32], x[32:], y[32:], n_classes=2, augment=lambda b, gen: b.flip(3))
    trainer = Trainer(data, lambda: small_cnn(1, 2, width=4), TrainConfig(methods=("sgd", "sema"), epochs=2,
                                                                         batch_size=8))
    assert not trainer.batched and trainer.extent is None and trainer.grids == {}
    frame = trainer.run()
    assert len(frame) == 4 and frame.test_acc.between(0, 1).all() and not frame.diverged.any()
    if trainer.device.type == "cuda":
        model = trainer.models()[("sgd", 0)]
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_history_rows_follow_the_contract():
    trainer = Trainer(blobs(), lambda: mlp(2, (8,), 2), TrainConfig(seeds=(0, 1), epochs=2, batch_size=8))
    assert trainer.frame().columns.tolist() == list(HISTORY_COLUMNS) and trainer.frame().empty
    rows = trainer.run_epoch()
    assert len(rows) == 6 and {r["epoch"] for r in rows} == {1}
    frame = trainer.run()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 12 and trainer.done
    assert frame.test_acc.between(0, 1).all() and (frame.train_loss > 0).all()
    assert trainer.run_epoch() == []                  # done: nothing more to do
    assert (frame[frame.method == "sgd"].test_acc.iloc[-2:] > 0.8).all()   # blobs are easy


def test_a_diverging_run_is_marked_and_the_others_continue():
    def model_fn():
        model = mlp(2, (8,), 2)
        if torch.initial_seed() == 1:                   # seed 1 starts already blown up
            with torch.no_grad():
                model[-1].weight.fill_(math.inf)
        return model

    for batched in (False, True):
        trainer = Trainer(blobs(), model_fn, TrainConfig(seeds=(0, 1), epochs=3), batched=batched)
        frame = trainer.run()
        assert trainer.diverged == {(m, 1): 1 for m in ("sgd", "ema", "sema")}
        bad = frame[frame.seed == 1]
        assert bad.epoch.tolist() == [1, 1, 1] and bad.diverged.all() and bad.test_acc.isna().all()
        good = frame[frame.seed == 0]
        assert len(good) == 9 and not good.diverged.any() and good.test_acc.notna().all()


def test_batch_size_larger_than_the_data_is_clamped():
    trainer = Trainer(blobs(n=20), lambda: mlp(2, (4,), 2), TrainConfig(batch_size=500, epochs=1))
    assert trainer.batch_size == 20 and trainer.batch_clamped and trainer.steps_per_epoch == 1
    trainer.run()
    assert len(trainer.history) == 3


def test_grids_are_class_probabilities_over_the_extent_from_epoch_0():
    data = blobs()
    data.extent = (-3.0, 3.0, -2.0, 2.0)
    trainer = Trainer(data, lambda: mlp(2, (8,), 2), TrainConfig(epochs=1, grid_resolution=7))
    assert trainer.extent == (-3.0, 3.0, -2.0, 2.0)
    before = trainer.grids[("sema", 0)].copy()
    assert before.shape == (7, 7, 2)
    assert abs(before.sum(-1) - 1).max() < 1e-5
    trainer.run()
    assert not (trainer.grids[("sema", 0)] == before).all()


def test_cosine_schedule_and_config_validation():
    config = TrainConfig(lr=0.1, schedule="cosine")
    assert learning_rate(config, 0, 10) == pytest.approx(0.1)
    assert learning_rate(config, 5, 10) == pytest.approx(0.05)
    assert learning_rate(TrainConfig(lr=0.1), 9, 10) == 0.1
    for bad in ({"methods": ("sgd", "nope")}, {"seeds": ()}, {"epochs": 0}, {"optimizer": "lbfgs"},
                {"lr": -1.0}, {"ema_momentum": 1.0}, {"switch_epochs": 0}, {"schedule": "step"}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    data = blobs()
    data.y_train = data.y_train + 5
    with pytest.raises(ValueError, match="labels"):
        Trainer(data, lambda: mlp(2, (4,), 2), TrainConfig(epochs=1))


def test_stop_cancels_and_the_callers_random_state_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    trainer = Trainer(blobs(), lambda: mlp(2, (4,), 2), TrainConfig(seeds=(5, 6), epochs=3))
    assert torch.equal(torch.rand(3), expected)
    trainer.run_epoch()
    trainer.stop()
    assert trainer.done and trainer.run_epoch() == [] and trainer.epoch == 1


# ------------------------------------------------------------- summaries and charts of a history

def history(finals: dict[str, list[float]], epochs: int = 3) -> pd.DataFrame:
    """A synthetic history whose last-epoch test accuracy per (method, seed) is given."""
    rows = []
    for method, accs in finals.items():
        for seed, acc in enumerate(accs):
            for epoch in range(1, epochs + 1):
                value = acc * epoch / epochs
                rows.append({"epoch": epoch, "method": method, "seed": seed, "train_loss": 1 - value,
                             "train_acc": value, "test_loss": 1 - value, "test_acc": value,
                             "switched": method == "sema", "diverged": False, "seconds": 0.1})
    return pd.DataFrame(rows)


def test_results_table_is_mean_std_over_seeds_with_epochs_to_target():
    from sema_demo.charts.training import epochs_to_reach, results_table

    frame = history({"sgd": [0.9, 0.7], "sema": [0.95, 0.93]})
    reach = epochs_to_reach(frame, 0.6)
    assert reach.set_index(["method", "seed"])["epoch"].to_dict() == {("sgd", 0): 2, ("sgd", 1): 3,
                                                                      ("sema", 0): 2, ("sema", 1): 2}
    table = results_table(frame, 0.9).set_index("Method")
    assert table.loc["SGD", "Final test accuracy (%)"] == "80.0 ± 14.1"
    assert table.loc["SGD", "Epochs to 90% test accuracy"] == "3.0 ± 0.0 (1 of 2 seeds; 1 never)"
    assert table.loc["SEMA", "Epochs to 90% test accuracy"] == "3.0 ± 0.0"


def test_results_text_never_claims_a_sema_win_it_did_not_measure():
    from sema_demo.charts.training import results_text

    clear = results_text(history({"sgd": [0.80, 0.82, 0.81, 0.80, 0.79], "sema": [0.95, 0.96, 0.94, 0.95, 0.95]}),
                         0.5)
    assert "SEMA − SGD final test accuracy (points): +14.6" in clear and "5 seeds): SEMA is better." in clear
    behind = results_text(history({"sgd": [0.95, 0.96, 0.95, 0.96, 0.97], "sema": [0.80, 0.82, 0.8, 0.81, 0.8]}), 0.5)
    assert "SGD is better." in behind and "SEMA is better" not in behind
    two = results_text(history({"sgd": [0.8, 0.9], "sema": [0.95, 0.96]}), 0.5)
    assert "too few seeds to tell" in two and "is better" not in two
    one_seed = results_text(history({"sgd": [0.8], "sema": [0.9]}), 0.5)
    assert "(1 seed): too few seeds to tell" in one_seed


def test_learning_curves_band_over_seeds_and_mark_switches():
    from sema_demo.charts.training import curve_bands, learning_curves

    frame = history({"sgd": [0.9, 0.7], "sema": [0.95, 0.93]})
    bands = curve_bands(frame, "accuracy")
    last = bands[(bands.method == "sgd") & (bands.split == "test") & (bands.epoch == 3)].iloc[0]
    assert last["mean"] == pytest.approx(80.0) and last["count"] == 2
    assert last["hi"] == pytest.approx(80 + 14.1421, abs=1e-3)
    spec = learning_curves(frame, "loss", switch_epochs=[1, 2, 3], epochs=5).to_dict()
    rules = [layer for layer in spec["layer"] if layer["mark"].get("type", layer["mark"]) == "rule"]
    assert len(rules) == 1                                  # SEMA's switches, as one layer of rules
    assert spec["layer"][-1]["encoding"]["x"]["scale"]["domain"] == [0, 5]


def test_learning_curves_before_the_first_epoch_have_finite_axes_and_whole_epoch_ticks():
    """An empty chart (epoch 0 of a live run) must not make Vega warn "Infinite extent"."""
    from sema_demo.charts.training import learning_curves

    empty = history({"sgd": [0.9], "sema": [0.9]}).iloc[0:0]
    for kind, top in (("accuracy", 100), ("loss", 1)):
        line = learning_curves(empty, kind, epochs=40).to_dict()["layer"][-1]["encoding"]
        assert line["y"]["scale"]["domain"] == [0, top]
        assert line["x"]["axis"]["tickMinStep"] == 1 and line["x"]["axis"]["format"] == "d"
    filled = learning_curves(history({"sgd": [0.9, 0.7]}), "loss").to_dict()["layer"][-1]["encoding"]
    assert "domain" not in filled["y"]["scale"]            # real data: the axis follows it


def test_learning_curves_spec_is_the_same_figure_with_its_data_named():
    """The live pages send the cached spec with new data; it must draw what learning_curves draws."""
    from sema_demo.charts.training import CURVES, curve_bands, learning_curves, learning_curves_spec

    frame = history({"sgd": [0.9, 0.7], "sema": [0.95, 0.93]})
    kwargs = dict(switch_epochs=[1, 2, 3], epochs=5, title="Loss")
    spec, chart = learning_curves_spec(frame, "loss", **kwargs), learning_curves(frame, "loss", **kwargs).to_dict()
    pd.testing.assert_frame_equal(spec["datasets"][CURVES], curve_bands(frame, "loss"))
    for ours, theirs in zip(spec["layer"], chart["layer"], strict=True):
        assert {k: v for k, v in ours.items() if k != "data"} == {k: v for k, v in theirs.items() if k != "data"}
    assert [layer["data"]["name"] for layer in spec["layer"][1:]] == [CURVES, CURVES]   # bands and lines
    later = learning_curves_spec(history({"sgd": [0.5, 0.6], "sema": [0.5, 0.6]}), "loss", **kwargs)
    assert later["layer"] == spec["layer"]                        # same layout: the cached spec …
    assert not later["datasets"][CURVES].equals(spec["datasets"][CURVES])   # … with its own data
    later["layer"].clear()
    assert learning_curves_spec(frame, "loss", **kwargs)["layer"]           # callers get a copy
