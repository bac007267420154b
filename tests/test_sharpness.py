"""Loss-landscape slices and sharpness measures, checked against independent references."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sema_demo import sharpness as S
from sema_demo.models import mlp, small_cnn


def mse(out, y):
    return ((out.squeeze(-1) - y) ** 2).mean()


def regression(singular_values, n=64, seed=0, at_minimum=True):
    """Least squares with a known Hessian: loss = mean((Xw − y)²) has H = 2/n · XᵀX."""
    gen = torch.Generator().manual_seed(seed)
    d = len(singular_values)
    u, _ = torch.linalg.qr(torch.randn(n, d, generator=gen))
    v, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
    x = u @ torch.diag(torch.tensor(singular_values)) @ v.T
    y = torch.randn(n, generator=gen)
    model = nn.Linear(d, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(x, y[:, None]).solution.T if at_minimum else torch.randn(1, d))
    return model, x, y, 2 / n * x.T @ x


def trained_mlp(seed=0, hidden=(16, 16), steps=150):
    torch.manual_seed(seed)
    model = mlp(2, hidden, 2)
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] * x[:, 1] > 0).long()
    opt = torch.optim.Adam(model.parameters(), 0.02)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x, y


def cnn_with_statistics(seed):
    """A small BatchNorm CNN whose running statistics differ from their initial values."""
    torch.manual_seed(seed)
    model = small_cnn(in_channels=1, n_classes=3, width=4)
    x = torch.randn(24, 1, 8, 8)
    model.train()
    model(x * (1 + seed))
    return model.eval(), x, torch.arange(24) % 3


# ---------------------------------------------------------------- Hessian on quadratics

def test_top_eigenvalue_matches_eigvalsh_on_a_quadratic():
    model, x, y, hessian = regression([4.0, 2.0, 1.5, 1.0, 0.5, 0.2], at_minimum=False)
    eig = S.top_eigenvalue(S.LossSurface(model, x, y, mse), max_hvps=50, tol=1e-7)
    exact = torch.linalg.eigvalsh(hessian)[-1].item()
    assert eig.value == pytest.approx(exact, rel=1e-3)
    assert eig.hvps <= 50


def test_top_eigenvalue_of_a_network_matches_its_full_hessian():
    model, x, y = trained_mlp(hidden=(8,))
    surface = S.LossSurface(model, x, y)
    flat = torch.cat([p.detach().reshape(-1) for p in surface.params.values()])

    def loss(vector):
        return F.cross_entropy(torch.func.functional_call(surface.model, S._unflat(vector, surface.params), (x,)), y)

    exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))
    top = exact[exact.abs().argmax()].item()
    assert S.top_eigenvalue(surface, max_hvps=50).value == pytest.approx(top, rel=0.01)


def test_hutchinson_trace_is_exact_for_a_diagonal_hessian():
    model, x, y, hessian = regression([3.0, 2.0, 1.0, 0.5])
    model.weight.data.zero_()
    # Orthonormal right singular vectors = identity makes H diagonal; vᵀHv = Σ H_ii for any ±1 vector.
    x = x @ torch.linalg.svd(x, full_matrices=False).Vh.T
    hessian = 2 / len(x) * x.T @ x
    est = S.hessian_trace(S.LossSurface(model, x, y, mse), samples=3)
    assert est.value == pytest.approx(torch.linalg.eigvalsh(hessian).sum().item(), rel=1e-4)


def test_hutchinson_trace_agrees_with_eigvalsh_within_its_error():
    model, x, y, hessian = regression([3.0, 2.5, 2.0, 1.0, 1.0, 0.5, 0.3, 0.1])
    est = S.hessian_trace(S.LossSurface(model, x, y, mse), samples=400, seed=3)
    exact = torch.linalg.eigvalsh(hessian).sum().item()
    assert 0 < est.stderr < 0.1 * exact
    assert abs(est.value - exact) < 4 * est.stderr


def test_hvp_is_the_same_with_data_in_chunks():
    model, x, y, hessian = regression([2.0, 1.0, 0.5])
    v = torch.tensor([1.0, -2.0, 0.5])
    whole = S.LossSurface(model, x, y, mse).hvp(v)
    chunked = S.LossSurface(model, x, y, mse, batch_size=7).hvp(v)
    torch.testing.assert_close(whole, hessian @ v, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- directions

def test_filter_normalisation_gives_each_filter_the_weights_filter_norm():
    model, _, _ = cnn_with_statistics(0)
    weights = dict(model.named_parameters())
    (direction,) = S.random_directions(weights, 1, seed=5)
    for name, w in weights.items():
        d = direction[name]
        if w.dim() <= 1:
            assert torch.count_nonzero(d) == 0, f"{name}: 1-D tensors get a zero direction"
        else:
            torch.testing.assert_close(d.reshape(len(d), -1).norm(dim=1), w.detach().reshape(len(w), -1).norm(dim=1))


def test_same_seed_gives_the_same_directions_and_another_seed_does_not():
    weights = dict(mlp(2, (16, 16), 2).named_parameters())
    a, b, c = (S.random_directions(weights, 2, seed) for seed in (7, 7, 8))
    for da, db, dc in zip(a, b, c):
        for name in weights:
            assert torch.equal(da[name], db[name])
            if weights[name].dim() > 1:
                assert not torch.equal(da[name], dc[name])


def test_every_network_of_one_shape_gets_the_same_directions_up_to_its_filter_norms():
    w1 = dict(mlp(2, (16,), 2).named_parameters())
    w2 = {n: 3 * w + 1 for n, w in w1.items()}
    (d1,), (d2,) = S.random_directions(w1, 1, 0), S.random_directions(w2, 1, 0)
    for name, w in w1.items():
        if w.dim() > 1:
            unit = lambda d: F.normalize(d.reshape(len(d), -1), dim=1)  # noqa: E731
            torch.testing.assert_close(unit(d1[name]), unit(d2[name]))


# ---------------------------------------------------------------- slices

def test_slices_at_offset_zero_equal_the_loss_at_the_solution():
    for model, x, y in (trained_mlp(), cnn_with_statistics(1)):
        direct = F.cross_entropy(model.eval()(x), y).item()
        surface = S.LossSurface(model, x, y)
        d1, d2 = S.random_directions(surface.params, 2, seed=0)
        offsets = torch.linspace(-1, 1, 5)
        assert surface.loss() == pytest.approx(direct, rel=1e-5)
        assert S.slice_1d(surface, d1, offsets)[2].item() == pytest.approx(direct, rel=1e-5)
        assert S.slice_2d(surface, d1, d2, offsets)[2, 2].item() == pytest.approx(direct, rel=1e-5)


def test_batched_slice_equals_a_point_by_point_loop():
    model, x, y = trained_mlp()
    surface = S.LossSurface(model, x, y, points_per_pass=7, batch_size=64)
    d1, d2 = S.random_directions(surface.params, 2, seed=1)
    offsets = torch.linspace(-0.5, 0.5, 4)
    grid = S.slice_2d(surface, d1, d2, offsets)
    probe = mlp(2, (16, 16), 2)
    for i, a in enumerate(offsets):
        for j, b in enumerate(offsets):
            probe.load_state_dict({n: w + a * d1[n] + b * d2[n] for n, w in surface.params.items()})
            assert grid[i, j].item() == pytest.approx(F.cross_entropy(probe(x), y).item(), rel=1e-5)


def test_interpolation_ends_at_each_network_with_its_own_batchnorm_statistics():
    (a, x, y), (b, _, _) = cnn_with_statistics(0), cnn_with_statistics(2)
    losses = S.interpolate(a, b, x, y, torch.tensor([0.0, 0.5, 1.0]))
    assert losses[0].item() == pytest.approx(F.cross_entropy(a(x), y).item(), rel=1e-5)
    assert losses[2].item() == pytest.approx(F.cross_entropy(b(x), y).item(), rel=1e-5)
    with pytest.raises(ValueError, match="same architecture"):
        S.interpolate(a, small_cnn(1, 3, width=8), x, y, torch.tensor([0.0]))


def test_perturbation_increase_on_a_quadratic_is_the_exact_quadratic_form():
    model, x, y, hessian = regression([2.0, 1.0, 0.5, 0.25])
    surface = S.LossSurface(model, x, y, mse)
    rho, samples = 0.1, 5
    mean_up, worst_up = S.perturbation_sharpness(surface, rho, samples, seed=4)
    exact = [0.5 * rho ** 2 * (d["weight"].reshape(-1) @ hessian @ d["weight"].reshape(-1)).item()
             for d in S.random_directions(surface.params, samples, seed=4)]
    assert mean_up == pytest.approx(np.mean(exact), rel=1e-3)
    assert worst_up == pytest.approx(max(exact), rel=1e-3)


# ---------------------------------------------------------------- width and the summary

def test_crossing_radius_interpolates_and_reports_never_as_infinity():
    offsets = np.linspace(-1, 1, 41)
    assert S.crossing_radius(offsets, offsets ** 2, 0.25) == pytest.approx((0.5, 0.5), abs=1e-3)
    left, right = S.crossing_radius(offsets, np.where(offsets > 0, offsets, 0.0), 0.3)
    assert math.isinf(left) and right == pytest.approx(0.3)
    assert S.crossing_radius(offsets, np.where(offsets > 0.5, np.nan, 0.0), 1.0)[1] == pytest.approx(0.55)


def test_flat_width_counts_sides_that_never_rise_as_the_span():
    offsets = np.linspace(-1, 1, 21)
    width = S.flat_width(offsets, np.stack([offsets ** 2, 0 * offsets]), base=0.0, rise=0.25)
    assert (width.censored, width.sides) == (2, 4)
    assert width.radius == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)


def test_measure_runs_end_to_end_and_the_wider_minimum_is_measured_wider():
    sharp, x, y = trained_mlp()
    settings = S.SharpnessSettings(steps_1d=21, steps_2d=5, n_directions=3, hutchinson_samples=8, n_perturbations=4)
    wide = S.measure(S.LossSurface(sharp, x, y, loss_fn=lambda o, t: 0.25 * F.cross_entropy(o, t)), settings)
    narrow = S.measure(S.LossSurface(sharp, x, y), settings)
    assert narrow.slice_2d.shape == (5, 5) and narrow.slices_1d.shape == (3, 21)
    assert narrow.top_eigenvalue.value == pytest.approx(4 * wide.top_eigenvalue.value, rel=0.02)
    assert narrow.width.radius <= wide.width.radius
    assert set(narrow.row()) >= set(S.MEASURE_COLUMNS)


def test_summary_says_so_when_the_averaged_method_is_not_flatter_and_ignores_seed_noise():
    def seeds(method, depth, width, lambda_max, trace, spread=0.0):
        return [{"method": method, "seed": k, "depth": depth + d, "width": width + d, "lambda_max": lambda_max + d,
                 "trace": trace + d} for k, d in enumerate((-spread, spread))]
    rows = pd.DataFrame(seeds("sgd", 0.10, 0.5, 2.0, 10.0) + seeds("ema", 0.20, 0.3, 3.0, 12.0)
                        + seeds("sema", 0.05, 0.9, 1.0, 5.0) + seeds("swa", 0.1, 0.52, 2.05, 10.05, spread=0.5))
    ema, sema, swa = S.flatness_summary(rows, names={"sgd": "SGD", "ema": "EMA", "sema": "SEMA", "swa": "SWA"})
    assert ema.startswith("**EMA** vs SGD: not flatter on any measure (sharper on 3)")
    assert "λ_max 3 vs 2 (sharper)" in ema and "loss 0.2 vs 0.1 (shallower)" in ema
    assert sema.startswith("**SEMA** vs SGD: flatter on all three measures") and "(deeper)" in sema
    assert swa.count("within seed spread") == 4


# ---------------------------------------------------------------- the direct MLP path and the pooling swap

def _reference_losses(model, x, y, loss_fn, coords, directions):
    """Each point by functional_call on the untouched model, one at a time."""
    base = {n: t.detach() for n, t in model.named_parameters()}
    out = []
    for row in coords:
        state = {n: w + sum(c * d[n] for c, d in zip(row, directions) if n in d) for n, w in base.items()}
        out.append(loss_fn(torch.func.functional_call(model.eval(), state, (x,)), y))
    return torch.stack(out)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_the_direct_mlp_path_matches_functional_call(activation):
    torch.manual_seed(3)
    model = mlp(2, (16, 8), 3, activation)
    model[2].bias = None                                  # a layer without bias
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(4))
    y = torch.arange(50) % 3
    coords = torch.randn(11, 2, generator=torch.Generator().manual_seed(5))
    brier = lambda o, t: F.mse_loss(o.softmax(-1), F.one_hot(t, 3).float())  # noqa: E731
    for loss_fn in (F.cross_entropy, brier):   # the default and another mean loss (through vmap)
        surface = S.LossSurface(model, x, y, loss_fn, batch_size=16, points_per_pass=4)
        assert surface._plan is not None, "a plain MLP takes the direct path"
        full = S.random_directions(surface.params, 2, seed=6)
        part = [{"2.weight": d["2.weight"], "4.bias": d["4.bias"] + 0.3} for d in full]   # the rest shared
        for directions in (full, part):
            torch.testing.assert_close(surface.losses(coords, directions),
                                       _reference_losses(model, x, y, loss_fn, coords, directions),
                                       rtol=2e-5, atol=2e-6)


def test_global_average_pooling_is_batched_without_a_fallback_and_gives_the_same_losses():
    import warnings
    model, x, y = cnn_with_statistics(1)
    surface = S.LossSurface(model, x, y, points_per_pass=3)
    assert surface._plan is None and not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in surface.model.modules())
    d1, d2 = S.random_directions(surface.params, 2, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # vmap warns when it falls back on a loop
        grid = S.slice_2d(surface, d1, d2, torch.linspace(-0.5, 0.5, 3))
    probe = small_cnn(in_channels=1, n_classes=3, width=4).eval()
    for i, a in enumerate((-0.5, 0.0, 0.5)):
        moved = {n: w + a * d1[n] - 0.5 * d2[n] for n, w in surface.params.items()}
        probe.load_state_dict({**model.state_dict(), **moved})
        assert grid[i, 0].item() == pytest.approx(F.cross_entropy(probe(x), y).item(), rel=1e-5)


def test_a_cnn_on_the_cpu_one_point_a_pass_in_channels_last_gives_the_batched_losses():
    """On the CPU a CNN's grid is evaluated one point a pass, weights and inputs in channels-last layout
    (oneDNN runs it about twice as fast): the same losses as vmap's batched points and as the model."""
    torch.manual_seed(2)
    model, x, y = small_cnn(in_channels=3, n_classes=3, width=4).eval(), torch.randn(24, 3, 8, 8), torch.arange(24) % 3
    one, batched = S.LossSurface(model, x, y, points_per_pass=1), S.LossSurface(model, x, y, points_per_pass=4)
    assert one._channels_last and one.chunks[0][0].is_contiguous(memory_format=torch.channels_last)
    d1, d2 = S.random_directions(one.params, 2, seed=3)
    offsets = torch.linspace(-0.4, 0.4, 3)
    torch.testing.assert_close(S.slice_2d(one, d1, d2, offsets), S.slice_2d(batched, d1, d2, offsets),
                               rtol=1e-5, atol=1e-6)
    assert one.loss() == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-5)
    assert not S.LossSurface(mlp(2, (4,), 2), torch.randn(8, 2), torch.arange(8) % 2)._channels_last
