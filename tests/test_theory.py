"""The noisy quadratic model: exact moments against independent references.

References: a literal step-by-step moment recurrence (checks the fast doubling
algebra), the library's own torch optimizer + SwitchEMA (checks the conventions),
Monte-Carlo runs (checks the moments statistically), closed forms (steady states).
"""
import math
import warnings
from dataclasses import replace
from statistics import NormalDist

import numpy as np
import pytest
import torch
from torch import nn

from sema_demo import EMA, SwitchEMA, theory
from sema_demo.theory import (NQM, SERIES, SWITCH, curves_frame, ema_steady_state_closed_form, exact_curves,
                              growth_per_step, monte_carlo, sgd_steady_state_closed_form, steady_state,
                              step_matrices, summarize)

SMALL = NQM(dim=8, condition=10.0, batch_size=4.0, lr=0.5, beta=0.7, alpha=0.9, switch_every=15, steps=120)


def literal_moments(cfg: NQM) -> dict[str, np.ndarray]:
    """Expected loss per series, stepping m ← A·m, C ← A·C·Aᵀ + c·b·bᵀ (S at switches) one step at a time,
    each step at its own learning rate."""
    h, c = cfg.curvatures, cfg.noise
    out = {s: [cfg.start_loss] for s in SERIES}
    for switched in (False, True):
        m = np.tile([cfg.start, 0.0, cfg.start], (cfg.dim, 1))
        C = np.zeros((cfg.dim, 3, 3))
        for t in range(1, cfg.steps + 1):
            A, b = step_matrices(cfg, float(cfg.learning_rates()[t - 1]))
            m = np.einsum("dij,dj->di", A, m)
            C = A @ C @ A.transpose(0, 2, 1) + c[:, None, None] * b[:, :, None] * b[:, None, :]
            if switched and t % cfg.switch_every == 0:
                m, C = m @ SWITCH.T, SWITCH @ C @ SWITCH.T
            theta, phi = 0.5 * h @ (m[:, 0] ** 2 + C[:, 0, 0]), 0.5 * h @ (m[:, 2] ** 2 + C[:, 2, 2])
            for s, v in zip(("sema_theta", "sema") if switched else ("sgd", "ema"), (theta, phi)):
                out[s].append(v)
    return {s: np.array(v) for s, v in out.items()}


@pytest.mark.parametrize("switch_every", [1, 7, 15, 120, 500])
def test_fast_exact_curves_equal_the_literal_recurrence(switch_every):
    cfg = replace(SMALL, switch_every=switch_every)    # 7 does not divide 120; 500 never switches
    curves, literal = exact_curves(cfg), literal_moments(cfg)
    for s in SERIES:
        np.testing.assert_allclose(curves.total(s), literal[s], rtol=1e-10, atol=1e-14, err_msg=s)


@pytest.mark.parametrize("switch_every", [1, 7, 60])
def test_blocked_work_gives_the_same_curves(monkeypatch, switch_every):
    cfg = replace(SMALL, switch_every=switch_every)
    whole = exact_curves(cfg), steady_state(cfg)
    monkeypatch.setattr(theory, "BLOCK", 18 * cfg.dim * 4)     # blocks of 4 steps and of 4 periods
    blocked = exact_curves(cfg), steady_state(cfg)
    for s in SERIES:
        np.testing.assert_allclose(blocked[0].total(s), whole[0].total(s), rtol=1e-10, err_msg=s)
        assert blocked[1][s] == pytest.approx(whole[1][s], rel=1e-10)


def test_exact_curves_match_monte_carlo_within_sampling_error():
    curves = exact_curves(SMALL)
    mc = monte_carlo(SMALL, samples=4000, seed=0)
    checked = np.arange(1, SMALL.steps + 1, 4)
    # Bonferroni: a family-wise false-alarm rate of 0.1 % over every (series, step) compared.
    z = NormalDist().inv_cdf(1 - 0.001 / (2 * len(SERIES) * len(checked)))
    for s in SERIES:
        exact, sampled, stderr = curves.total(s)[checked], mc.mean[s][checked], mc.stderr[s][checked]
        assert np.all(stderr < 0.05 * exact), "the simulation is precise enough to be a real check"
        assert np.all(np.abs(sampled - exact) <= z * stderr), s
        assert np.all(mc.low[s][checked] < mc.high[s][checked]), "single runs spread around the mean"


def test_alpha_zero_makes_ema_and_sema_equal_sgd():
    cfg = replace(SMALL, alpha=0.0)
    curves = exact_curves(cfg)
    for s in ("ema", "sema", "sema_theta"):
        np.testing.assert_allclose(curves.total(s), curves.total("sgd"), rtol=1e-12)
    mc = monte_carlo(cfg, samples=50, seed=1)
    for s in ("ema", "sema", "sema_theta"):
        np.testing.assert_array_equal(mc.mean[s], mc.mean["sgd"])


def test_switch_period_longer_than_the_run_makes_sema_equal_ema():
    cfg = replace(SMALL, switch_every=SMALL.steps + 1)
    curves = exact_curves(cfg)
    np.testing.assert_array_equal(curves.total("sema"), curves.total("ema"))
    np.testing.assert_array_equal(curves.total("sema_theta"), curves.total("sgd"))
    mc = monte_carlo(cfg, samples=50, seed=2)
    np.testing.assert_array_equal(mc.mean["sema"], mc.mean["ema"])
    # …while switching inside the run does change SEMA
    assert not np.allclose(exact_curves(SMALL).total("sema"), curves.total("ema"))


def torch_run(cfg: NQM, averager) -> tuple[list[float], list[float]]:
    """Loss of θ and of φ per step for torch.optim.SGD(momentum=β) with a library averager, no noise."""
    h = torch.tensor(cfg.curvatures)
    model = nn.Module()
    model.theta = nn.Parameter(torch.full((cfg.dim,), cfg.start, dtype=torch.float64))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.beta)
    avg = averager(model)
    loss = lambda w: 0.5 * (h * w ** 2).sum()  # noqa: E731
    theta, phi = [loss(model.theta).item()], [loss(avg.module.theta).item()]
    for _ in range(cfg.steps):
        opt.zero_grad()
        loss(model.theta).backward()
        opt.step()
        avg.update()
        theta.append(loss(model.theta).item())
        phi.append(loss(avg.module.theta).item())
    return theta, phi


def test_zero_noise_gives_the_deterministic_path_of_the_library():
    cfg = replace(SMALL, batch_size=math.inf, steps=90)
    curves = exact_curves(cfg)
    for s in SERIES:
        assert np.all(curves.variance[s] == 0.0)
    sgd, ema = torch_run(cfg, lambda m: EMA(m, momentum=cfg.alpha))
    sema_theta, sema = torch_run(cfg, lambda m: SwitchEMA(m, momentum=cfg.alpha, switch_every=cfg.switch_every))
    for s, reference in (("sgd", sgd), ("ema", ema), ("sema", sema), ("sema_theta", sema_theta)):
        np.testing.assert_allclose(curves.bias[s], reference, rtol=1e-10, err_msg=s)


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_steady_states_match_closed_forms_and_the_long_run(beta):
    cfg = NQM(dim=20, condition=10.0, batch_size=8.0, lr=0.3, beta=beta, alpha=0.95, switch_every=20, steps=4000)
    steady = steady_state(cfg)
    assert steady["sgd"] == pytest.approx(sgd_steady_state_closed_form(cfg), rel=1e-10)
    if beta == 0:
        assert steady["ema"] == pytest.approx(ema_steady_state_closed_form(cfg), rel=1e-10)
    else:
        with pytest.raises(ValueError):
            ema_steady_state_closed_form(cfg)
    curves = exact_curves(cfg)
    assert curves.total("sgd")[-1] == pytest.approx(steady["sgd"], rel=1e-8)
    assert curves.total("ema")[-1] == pytest.approx(steady["ema"], rel=1e-8)
    last_period = slice(-cfg.switch_every, None)     # steps 0 … K−1 after a switch, in some order
    assert curves.total("sema")[last_period].mean() == pytest.approx(steady["sema"], rel=1e-8)
    assert curves.total("sema_theta")[last_period].mean() == pytest.approx(steady["sema_theta"], rel=1e-8)


def test_unstable_learning_rate_grows_and_is_cut_without_overflow_warnings():
    cfg = replace(SMALL, lr=1.05 * SMALL.max_stable_lr, steps=2000)
    assert not cfg.stable and growth_per_step(cfg)["sgd"] > 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curves = exact_curves(cfg)
        mc = monte_carlo(cfg, samples=20, seed=0)
        summary = summarize(curves, steady_state(cfg))
    k = curves.diverged["sgd"]
    total = curves.total("sgd")
    assert 0 < k < cfg.steps and total[k] > 1e6 * total[0]
    assert np.all(np.isfinite(total[:k])) and np.all(np.isnan(total[k + 1:]))
    assert total[k - 1] > total[k // 2] > total[0], "the growth is visible before the cut"
    assert np.isnan(mc.mean["sgd"][-1])
    assert summary.steady == {} and math.isnan(summary.final["sgd"])


def test_stability_bound_is_the_heavy_ball_bound():
    cfg = NQM(beta=0.5)
    assert cfg.max_stable_lr == pytest.approx(3.0)
    assert growth_per_step(replace(cfg, lr=2.9))["sgd"] < 1 < growth_per_step(replace(cfg, lr=3.1))["sgd"]


def test_curvature_spectrum_and_noise():
    np.testing.assert_allclose(NQM(dim=100, condition=100).curvatures, 1 / np.arange(1, 101))
    h = NQM(dim=10, condition=1000).curvatures
    assert h.max() == 1 and h.min() == pytest.approx(1e-3) and np.all(np.diff(h) < 0)
    np.testing.assert_array_equal(NQM(dim=1, condition=50).curvatures, [1.0])
    cfg = NQM(dim=5, condition=5, batch_size=32)
    np.testing.assert_allclose(cfg.noise, cfg.curvatures / 32)


@pytest.mark.parametrize("bad", [dict(alpha=1.0), dict(beta=-0.1), dict(dim=0), dict(steps=0), dict(switch_every=0),
                                 dict(condition=0.5), dict(batch_size=0), dict(lr=-1.0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        NQM(**bad)


def test_summary_and_csv_frame():
    curves = exact_curves(SMALL)
    summary = summarize(curves, steady_state(SMALL))
    best = min(summary.final[s] for s in ("sgd", "ema", "sema"))
    assert summary.level == pytest.approx(2 * best)
    for s in ("sgd", "ema", "sema"):
        step = summary.reach[s]
        if step is not None:
            assert curves.total(s)[step] <= summary.level < curves.total(s)[:step].min()
    frame = curves_frame(curves, monte_carlo(SMALL, samples=10))
    assert len(frame) == len(SERIES) * (SMALL.steps + 1)
    assert {"step", "series", "expected_loss", "bias", "variance", "mc_mean", "mc_stderr"} <= set(frame.columns)
    np.testing.assert_allclose(frame["expected_loss"], frame["bias"] + frame["variance"])


# ------------------------------------------------------------------------ the map

@pytest.mark.parametrize("switch_every", [1, 3, 7, 11, 40, 120, 500])
def test_grid_curves_equal_the_single_setting_curves_at_every_cell(switch_every):
    """Every cell of a grid (small K blocks, long K cut into sub-blocks, K beyond the run)
    equals exact_curves of that one setting."""
    alphas = np.array([[0.0], [0.5], [0.9], [0.99]])
    grid = theory.grid_curves(SMALL, alphas, [switch_every])
    for row, alpha in enumerate(alphas[:, 0]):
        single = exact_curves(replace(SMALL, alpha=alpha, switch_every=switch_every))
        for s in theory.MAP_SERIES:
            np.testing.assert_allclose(grid.loss[s][row, 0], single.total(s), rtol=1e-4, err_msg=(alpha, s))


def test_grid_cells_with_alpha_zero_are_sgd_exactly():
    """α = 0: φ = θ after every step and a switch copies θ onto itself, so EMA and SEMA are SGD;
    the map takes SGD's curve there (its cells with a horizon under one step) and computes the rest."""
    grid = theory.grid_curves(SMALL, np.array([[0.0, 0.9], [0.9, 0.0]]), [3, 40])
    for row, col in ((0, 0), (1, 1)):
        for s in ("ema", "sema"):
            np.testing.assert_array_equal(grid.loss[s][row, col], grid.loss["sgd"][row, col])
    single = exact_curves(replace(SMALL, alpha=0.9, switch_every=3))
    np.testing.assert_allclose(grid.loss["sema"][1, 0], single.total("sema"), rtol=1e-4)
    assert not np.allclose(grid.loss["sema"][1, 0], grid.loss["sgd"][1, 0])


def test_ratio_map_cells_equal_the_page_summary():
    """A few cells of the page's map: the ratios and steps-to-reach are the Theory page's numbers."""
    base = NQM()
    ratios, ks = np.array([0.5, 2.0, 8.0]), np.array([5, 10, 50])
    m = theory.ratio_map(base, ratios, ks)
    for i, r in enumerate(ratios):
        for j, K in enumerate(ks):
            cfg = replace(base, alpha=1 - 1 / (r * K), switch_every=int(K))
            summary = summarize(exact_curves(cfg), {})
            assert m.final["sema"][i, j] == pytest.approx(summary.final["sema"], rel=1e-4)
            assert m.ratio("ema")[i, j] == pytest.approx(summary.final["sema"] / summary.final["ema"], rel=1e-4)
            assert m.ratio("sgd")[i, j] == pytest.approx(summary.final["sema"] / summary.final["sgd"], rel=1e-4)
            for s in ("sgd", "ema", "sema"):
                expected = summary.reach[s]
                assert m.reach[s][i, j] == (math.inf if expected is None else expected), (r, K, s)


def test_ratio_map_marks_horizons_shorter_than_a_step_and_queries_one_cell():
    m = theory.ratio_map(NQM(steps=200), [0.1, 1.0], [2, 20])
    assert np.isnan(m.ratio("ema")[0, 0]) and not m.valid[0, 0]        # horizon 0.2 steps: no such α
    assert np.all(np.isfinite(m.ratio("ema")[1]))
    cell = theory.ratio_at(20, 20, batch_size=16, base=NQM(steps=200))     # horizon 20 = 1.0 × K
    assert cell["alpha"] == pytest.approx(0.95)
    assert cell["final_sema_over_ema"] == pytest.approx(m.ratio("ema")[1, 1], rel=1e-9)
    frame = m.frame()
    assert len(frame) == 4 and {"final_sema_over_ema", "steps_sema_over_sgd", "alpha"} <= set(frame.columns)


def test_switch_intervals_are_distinct_log_spaced_integers():
    ks = theory.switch_intervals(30, 500)
    assert len(ks) == 30 and ks[0] == 1 and ks[-1] == 500 and np.all(np.diff(ks) >= 1)


def test_grid_curves_cut_a_diverging_cell():
    grid = theory.grid_curves(replace(SMALL, lr=4.5), np.array([[0.9]]), [5])
    assert np.isnan(grid.final("sgd")[0, 0]) and np.isnan(grid.final("sema")[0, 0])


# ------------------------------------------------------------------ learning-rate schedules

def test_schedules_are_the_stated_rates():
    cfg = NQM(lr=0.4, steps=8)
    np.testing.assert_allclose(replace(cfg, schedule="constant").learning_rates(), 0.4)
    np.testing.assert_allclose(replace(cfg, schedule="step").learning_rates(), [0.4] * 4 + [0.04] * 2 + [0.004] * 2)
    cosine = replace(cfg, schedule="cosine").learning_rates()
    assert cosine[0] == 0.4 and np.all(np.diff(cosine) < 0) and cosine[-1] == pytest.approx(0.4 * 0.5 * (1 + np.cos(np.pi * 7 / 8)))
    with pytest.raises(ValueError):
        NQM(schedule="linear")


@pytest.mark.parametrize("schedule, switch_every", [("step", 15), ("cosine", 7), ("cosine", 500)])
def test_scheduled_curves_equal_the_literal_recurrence(schedule, switch_every):
    cfg = replace(SMALL, schedule=schedule, switch_every=switch_every)
    curves, literal = exact_curves(cfg), literal_moments(cfg)
    for s in SERIES:
        np.testing.assert_allclose(curves.total(s), literal[s], rtol=1e-10, atol=1e-14, err_msg=s)


def test_the_per_step_path_at_a_constant_rate_is_the_fast_path():
    plain, switched = theory._scheduled_moments(SMALL)
    slow, fast = theory._assemble(SMALL, plain, switched), exact_curves(SMALL)
    for s in SERIES:
        np.testing.assert_allclose(slow.total(s), fast.total(s), rtol=1e-10, err_msg=s)


def test_scheduled_monte_carlo_matches_the_exact_curves_and_decay_closes_the_gap_to_sgd():
    cfg = replace(SMALL, schedule="cosine")
    curves, mc = exact_curves(cfg), monte_carlo(cfg, samples=3000, seed=1)
    checked = np.arange(1, cfg.steps + 1, 4)
    z = NormalDist().inv_cdf(1 - 0.001 / (2 * len(SERIES) * len(checked)))
    for s in SERIES:
        assert np.all(np.abs(mc.mean[s][checked] - curves.total(s)[checked]) <= z * mc.stderr[s][checked]), s
    # the page's point: against constant-rate SGD at its noise floor SEMA looks much better than against decayed SGD
    page = NQM(lr=0.5, beta=0.9, alpha=0.95, switch_every=10)
    gap = {sch: (lambda c: c.total("sgd")[-1] / c.total("sema")[-1])(exact_curves(replace(page, schedule=sch)))
           for sch in ("constant", "cosine")}
    assert gap["constant"] > 5 > gap["cosine"] > 1
    assert steady_state(replace(page, schedule="cosine")) == {}
    with pytest.raises(ValueError):
        theory.grid_curves(replace(page, schedule="cosine"), np.array([[0.9]]), [5])


# ------------------------------------------------------------------ where a setting sits

def test_regime_agrees_with_the_map_at_a_few_settings():
    base = NQM()
    ratios, ks = np.array([0.1, 0.5, 1.0, 5.0, 20.0]), np.array([2, 10, 20, 100, 400])
    m = theory.ratio_map(base, ratios, ks)
    seen = set()
    for i, r in enumerate(ratios):
        for j, K in enumerate(ks):
            if not m.valid[i, j]:
                continue
            ratio = m.ratio("ema")[i, j]
            expected = "helps" if ratio < 1 - theory.REGIME_TIE else "hurts" if ratio > 1 + theory.REGIME_TIE else "ties"
            found = theory.regime(replace(base, alpha=float(m.alpha[i, j]), switch_every=int(K)))
            assert found.verdict == expected, (r, K, ratio)
            assert found.over_ema == pytest.approx(ratio, rel=1e-3)
            seen.add(expected)
    assert seen == {"helps", "hurts", "ties"}, "the settings cover all three regimes"


def test_the_old_fixed_rule_was_wrong_where_sema_clearly_helps():
    """α = 0.99 (horizon 100 steps) and K = 20 on Theory's default: the horizon is 5× K, which the old
    warning called too long, yet SEMA ends about 35 % below EMA there."""
    found = theory.regime_at(0.99, 20)
    assert found.verdict == "helps" and found.over_ema < 0.7
    assert "helps" in found.sentence() and "noise" in found.reason()
    lagging = theory.regime_at(0.99, 2)              # K ≪ horizon: every switch copies a lagging average back
    assert lagging.verdict == "hurts" and lagging.lag_share > 0.5
    assert theory.regime_at(0.0, 10).verdict == "ties"
    assert theory.regime_at(0.95, 5000, steps=1000).verdict == "ties"      # never switches
    assert theory.regime(replace(NQM(), lr=4.0)).verdict == "diverges"


def test_the_long_horizon_warning_appears_only_where_the_numbers_bear_it_out():
    assert theory.regime_at(0.99, 20).lag_warning() == ""                       # horizon 5 × K, yet SEMA helps
    assert "much longer than the switch interval" in theory.regime_at(0.99, 4).lag_warning()    # hurts
    stuck = theory.regime_at(0.9999, 50)                                        # horizon ≫ the run: all lag
    assert stuck.lag_share > 0.5 and "≈ 10,000 steps" in stuck.lag_warning()
    assert theory.regime_at(0.95, 10).lag_warning() == ""                      # horizon 2 × K
