"""The playground's 2D landscapes: gradients against finite differences, and their stated minima."""
import math

import numpy as np
import pytest
import torch

from sema_demo.landscapes import LANDSCAPES, get_landscape

KEYS = list(LANDSCAPES)


def _points(land, n=32, seed=0) -> torch.Tensor:
    xmin, xmax, ymin, ymax = land.domain
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform((xmin, ymin), (xmax, ymax), (n, 2)), dtype=torch.float64)


@pytest.mark.parametrize("key", KEYS)
def test_autograd_gradient_matches_finite_differences(key):
    land = get_landscape(key)
    p = _points(land)
    h = 1e-6
    fd = torch.stack([(land.loss(p + h * e) - land.loss(p - h * e)) / (2 * h)
                      for e in torch.eye(2, dtype=torch.float64)], dim=-1)
    torch.testing.assert_close(land.grad(p), fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("key", KEYS)
def test_complex_step_gradient_matches_autograd(key):
    """The simulator's numpy gradient is the autograd gradient to machine precision."""
    land = get_landscape(key)
    p = _points(land, seed=1)
    g = land.grad_numpy(p[:, 0].numpy(), p[:, 1].numpy())
    np.testing.assert_allclose(g.T, land.grad(p).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(land.loss_numpy(p[:, 0].numpy(), p[:, 1].numpy()), land.loss(p).numpy(),
                               rtol=1e-14)


def test_loss_works_on_batches_of_any_shape():
    land = get_landscape("himmelblau")
    points = torch.zeros(3, 4, 2, dtype=torch.float64)
    assert land.loss(points).shape == (3, 4)
    assert land.grad(points).shape == (3, 4, 2)
    assert float(land.loss(torch.zeros(2, dtype=torch.float64))) == 11.0 ** 2 + 7.0 ** 2


@pytest.mark.parametrize("key", KEYS)
def test_stated_minima_are_minima(key):
    land = get_landscape(key)
    for m in land.minima[:12]:          # Rastrigin: the global one and its nearest rings suffice
        p = torch.tensor(m.point, dtype=torch.float64)
        assert float(land.grad(p).abs().max()) < 1e-8, m.name
        eig = torch.linalg.eigvalsh(land.hessian(p))
        assert float(eig.min()) > 0, f"{m.name}: Hessian not positive definite"
        assert math.isclose(float(eig.max()), m.sharpness, rel_tol=1e-9)
        assert math.isclose(float(land.loss(p)), m.loss, rel_tol=1e-9, abs_tol=1e-12)
        xmin, xmax, ymin, ymax = land.domain
        assert xmin <= m.point[0] <= xmax and ymin <= m.point[1] <= ymax


@pytest.mark.parametrize("key, expected", [
    ("valley", [(0.0, 0.0)]),
    ("rosenbrock", [(1.0, 1.0)]),
    ("himmelblau", [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]),
])
def test_textbook_minima(key, expected):
    land = get_landscape(key)
    np.testing.assert_allclose([m.point for m in land.minima], expected, atol=1e-6)
    assert all(abs(m.loss) < 1e-12 for m in land.minima)


def test_rastrigin_global_minimum_and_lattice_of_local_ones():
    land = get_landscape("rastrigin")
    best = min(land.minima, key=lambda m: m.loss)
    assert best.name == "global" and best.point == (0.0, 0.0) and best.loss == 0.0
    assert len(land.minima) == 121                   # one near every integer pair in [-5, 5]²
    xs, ys, z = land.grid(401)
    assert z.min() >= -1e-12


def test_two_basins_has_a_deep_sharp_and_a_shallower_flat_minimum():
    land = get_landscape("two_basins")
    sharp, flat = land.minima
    assert (sharp.name, flat.name) == ("sharp", "flat")
    assert sharp.loss < flat.loss < sharp.loss + 0.3          # deeper, but only slightly
    assert sharp.sharpness > 5 * flat.sharpness               # and much sharper
    # Each stated minimum is the lowest point of its basin on a fine grid.
    xs, ys, z = land.grid(601)
    gx, gy = np.meshgrid(xs, ys)
    for m in (sharp, flat):
        near = np.hypot(gx - m.point[0], gy - m.point[1]) < m.radius
        assert z[near].min() >= m.loss - 1e-12
    assert z.min() >= sharp.loss - 1e-12                      # the sharp one is the global minimum


def test_clamp_moves_points_into_the_domain():
    land = get_landscape("two_basins")
    assert land.clamp((0.5, -1.0)) == ((0.5, -1.0), False)
    assert land.clamp((10.0, -10.0)) == ((3.0, -3.0), True)
    assert land.clamp((float("nan"), 0.0)) == (land.start, True)


def test_nearest_minimum_names_the_basin():
    land = get_landscape("two_basins")
    sharp, flat = land.minima
    points = np.array([sharp.point, flat.point, (3.0, 3.0)])
    np.testing.assert_array_equal(land.nearest_minimum(points), [0, 1, -1])
    assert list(land.minimum_names(land.nearest_minimum(points))) == ["sharp", "flat", "no minimum"]


def test_unknown_landscape_is_a_clear_error():
    with pytest.raises(ValueError, match="landscape must be one of"):
        get_landscape("moon")
