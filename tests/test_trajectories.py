"""Trajectories: the vectorised simulator against the real averagers, and what it promises."""
from dataclasses import replace

import numpy as np
import pytest

from sema_demo.trajectories import SimConfig, draw_noise, many_starts, reference_path, simulate

ALL = ("sgd", "ema", "sema", "swa", "lookahead")


def _assert_same_path(fast, ref, atol=1e-9):
    assert fast.diverged_at == ref.diverged_at
    assert fast.theta.shape == ref.theta.shape
    np.testing.assert_allclose(fast.theta, ref.theta, rtol=0, atol=atol)
    np.testing.assert_allclose(fast.phi, ref.phi, rtol=0, atol=atol)
    np.testing.assert_allclose(fast.phi_loss, ref.phi_loss, rtol=1e-9, atol=atol)
    np.testing.assert_array_equal(fast.switch_steps, ref.switch_steps)


@pytest.mark.parametrize("landscape, optimizer, lr", [
    ("two_basins", "momentum", None), ("valley", "momentum", None), ("rosenbrock", "momentum", None),
    ("himmelblau", "momentum", None), ("rastrigin", "momentum", None),
    ("two_basins", "adam", 0.05), ("himmelblau", "adam", 0.1),
])
def test_fast_path_equals_the_real_averagers(landscape, optimizer, lr):
    """Same numbers as torch.optim + autograd + sema_demo.averaging on a 2-parameter module."""
    config = SimConfig.for_landscape(landscape, methods=ALL, steps=120, optimizer=optimizer,
                                     steps_per_epoch=10, switch_every=2, swa_start=3, lookahead_k=4)
    if lr is not None:
        config = replace(config, lr=lr)
    sim = simulate(config)
    for method in ALL:
        _assert_same_path(sim.paths[method], reference_path(config, method))


def test_diverging_run_is_flagged_and_truncated_like_the_reference():
    config = SimConfig.for_landscape("valley", lr=0.5, steps=100)     # lr·curvature = 12.5: unstable
    sim = simulate(config)
    for method, path in sim.paths.items():
        assert path.diverged_at is not None and path.diverged_at < 20
        assert len(path.theta) == path.diverged_at                   # steps 0 … k − 1 kept
        assert np.isfinite(path.theta).all() and np.isfinite(path.phi_loss).all()
        assert path.final_loss == float("inf")
        _assert_same_path(path, reference_path(config, method))
    assert np.isfinite(sim.to_frame().drop(columns="method").to_numpy(dtype=float)).all()


def test_a_diverging_method_does_not_stop_the_others():
    # On Himmelblau at lr 0.02 Lookahead's synchronisation throws it out; the others converge.
    config = SimConfig.for_landscape("himmelblau", methods=ALL, lr=0.02, noise=0.0, steps=200)
    sim = simulate(config)
    assert sim.paths["lookahead"].diverged_at is not None
    _assert_same_path(sim.paths["lookahead"], reference_path(config, "lookahead"))
    for method in ("sgd", "ema", "sema", "swa"):
        assert sim.paths[method].diverged_at is None
        assert len(sim.paths[method].theta) == 201 and np.isfinite(sim.paths[method].final_loss)
    assert sim.paths["sgd"].final_loss < 1e-3


def test_many_starts_flags_diverged_starts_and_keeps_the_rest():
    basins = many_starts(SimConfig.for_landscape("rosenbrock", lr=2e-3, steps=300, noise=0.0), 64)
    diverged = basins.diverged_at["sgd"] >= 0
    assert diverged.any() and (~diverged).any()
    assert np.isfinite(basins.final_loss["sgd"][~diverged]).all()
    assert (basins.final_loss["sgd"][diverged] == np.inf).all()
    assert (basins.basin["sgd"][diverged] == -1).all()


def test_same_seed_same_numbers_other_seed_other_numbers():
    config = SimConfig(steps=300)
    a, b = simulate(config), simulate(config)
    c = simulate(replace(config, seed=1))
    for m in config.methods:
        np.testing.assert_array_equal(a.paths[m].phi, b.paths[m].phi)
        assert not np.array_equal(a.paths[m].theta, c.paths[m].theta)


def test_every_method_sees_the_same_start_and_noise():
    """Before the first switch SEMA's θ is exactly SGD's θ: same start, same noise, same optimizer."""
    config = SimConfig(steps=200, steps_per_epoch=50)
    sim = simulate(config)
    first_switch = sim.paths["sema"].switch_steps[0]
    np.testing.assert_array_equal(sim.paths["sema"].theta[:first_switch], sim.paths["sgd"].theta[:first_switch])
    np.testing.assert_array_equal(sim.paths["ema"].theta, sim.paths["sgd"].theta)


def test_theta_equals_phi_right_after_each_switch():
    config = SimConfig(steps=500, steps_per_epoch=40, switch_every=2)
    path = simulate(config).paths["sema"]
    np.testing.assert_array_equal(path.switch_steps, np.arange(80, 501, 80))
    np.testing.assert_array_equal(path.theta[path.switch_steps], path.phi[path.switch_steps])
    assert not np.allclose(path.theta[path.switch_steps - 1], path.phi[path.switch_steps - 1])


def test_sema_is_ema_when_no_switch_happens():
    config = SimConfig(steps=300, steps_per_epoch=50, switch_every=10)        # first switch at step 500
    sim = simulate(config)
    assert len(sim.paths["sema"].switch_steps) == 0
    np.testing.assert_array_equal(sim.paths["sema"].theta, sim.paths["ema"].theta)
    np.testing.assert_array_equal(sim.paths["sema"].phi, sim.paths["ema"].phi)


def test_ema_and_sema_are_sgd_when_alpha_is_zero():
    sim = simulate(SimConfig(steps=300, ema_momentum=0.0))
    sgd = sim.paths["sgd"].theta
    for method in ("ema", "sema"):
        np.testing.assert_allclose(sim.paths[method].phi, sgd, rtol=0, atol=1e-12)
        np.testing.assert_allclose(sim.paths[method].theta, sgd, rtol=0, atol=1e-12)


def test_many_starts_equal_single_runs():
    config = SimConfig(steps=200)
    basins = many_starts(config, 16)
    for i in (0, 7, 15):
        single = simulate(replace(config, start=tuple(basins.starts[i]), seed=int(basins.seeds[i])))
        for m in config.methods:
            np.testing.assert_allclose(basins.ends[m][i], single.paths[m].phi[-1], rtol=0, atol=1e-12)
            assert basins.final_loss[m][i] == pytest.approx(single.paths[m].final_loss, rel=1e-12)


def test_spread_over_seeds_contains_the_shown_run():
    sim = simulate(SimConfig(steps=200), n_seeds=6)
    assert list(sim.spread.seeds) == list(range(6))
    for m, path in sim.paths.items():
        np.testing.assert_array_equal(sim.spread.ends[m][0], path.phi[-1])
    summary = sim.spread.summary()
    assert list(summary.method) == ["sgd", "ema", "sema"]
    shares = summary[["sharp", "flat", "no minimum", "diverged"]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)


def test_noise_draws_are_per_seed_and_prefix_stable():
    long, short = draw_noise([3, 4], 50), draw_noise([4], 20)
    assert long.shape == (50, 2, 2)
    np.testing.assert_array_equal(long[:20, :, 1], short[:, :, 0])


def test_start_outside_the_domain_is_clamped_with_a_notice():
    sim = simulate(SimConfig(start=(9.0, 0.5), steps=50))
    assert sim.start == (3.0, 0.5)
    assert "outside the domain" in sim.notices[0]
    assert tuple(sim.paths["sgd"].theta[0]) == (3.0, 0.5)


@pytest.mark.parametrize("change, message", [
    ({"methods": ("sgd", "adamw")}, "methods"), ({"lr": 0.0}, "learning rate"),
    ({"ema_momentum": 1.0}, "EMA momentum"), ({"beta": 1.0}, "β"), ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ({"optimizer": "lion"}, "optimizer"), ({"noise": -1.0}, "noise"),
])
def test_invalid_settings_are_clear_errors(change, message):
    with pytest.raises(ValueError, match=message):
        simulate(replace(SimConfig(steps=10), **change))


def test_csv_export_has_one_row_per_method_and_step():
    sim = simulate(SimConfig(steps=100))
    frame = sim.to_frame()
    assert len(frame) == 3 * 101
    assert frame[frame.method == "sema"].switched.sum() == 2
    assert set(frame.columns) >= {"theta_x", "theta_y", "phi_x", "phi_y", "theta_loss", "phi_loss"}


# --- The claims the page makes about its presets, measured over many noise seeds -----------------

def test_moderate_noise_sema_settles_deepest_in_the_sharp_well():
    """Preset ①: SEMA ends lowest, and more often in the sharp (deeper) minimum than SGD."""
    summary = simulate(SimConfig(lr=0.02, noise=1.2, ema_momentum=0.99), n_seeds=48).spread.summary()
    loss = summary.set_index("method")["final loss mean"]
    sharp = summary.set_index("method")["sharp"]
    assert loss["sema"] < loss["ema"] < loss["sgd"]
    assert sharp["sema"] > sharp["sgd"] + 0.2


def test_hot_noise_sema_settles_in_the_flat_basin_most_often():
    """Preset ②: with a larger learning rate SEMA ends in the flat minimum more often than SGD and EMA."""
    summary = simulate(SimConfig(lr=0.05, noise=1.0, ema_momentum=0.98), n_seeds=48).spread.summary()
    flat = summary.set_index("method")["flat"]
    loss = summary.set_index("method")["final loss mean"]
    assert flat["sema"] > max(flat["sgd"], flat["ema"]) + 0.1
    assert loss["sema"] < min(loss["sgd"], loss["ema"])
