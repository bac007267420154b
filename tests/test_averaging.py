"""The averagers against hand computation, PyTorch's own EMA, and their contracts."""
import copy

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sema_demo import EMA, SWA, Lookahead, SwitchEMA
from sema_demo.averaging import NoAverage, make_averager
from sema_demo.models import mlp, small_cnn


class TwoParams(nn.Module):
    def __init__(self, a=1.0, b=-2.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([a, b], dtype=torch.float64))


def set_weights(model, values):
    with torch.no_grad():
        model.w.copy_(torch.tensor(values, dtype=torch.float64))


def test_ema_matches_hand_computation():
    model = TwoParams()
    ema = EMA(model, momentum=0.5)
    assert torch.equal(ema.module.w, model.w)          # φ starts as a copy of θ
    assert ema.module.w is not model.w
    phi = [1.0, -2.0]
    for theta in ([3.0, 0.0], [1.0, 4.0], [-1.0, 2.0]):
        set_weights(model, theta)
        ema.update()
        phi = [0.5 * p + 0.5 * t for p, t in zip(phi, theta)]
        assert ema.module.w.tolist() == pytest.approx(phi)
    assert ema.num_updates == 3
    assert ema.horizon == pytest.approx(2.0)


def test_switch_copies_phi_into_theta_in_place_and_keeps_averaging():
    model = TwoParams()
    sema = SwitchEMA(model, momentum=0.75)
    live_tensor = model.w
    set_weights(model, [5.0, 2.0])
    sema.update()                                     # φ = .75·(1,-2) + .25·(5,2) = (2, -1)
    assert sema.module.w.tolist() == pytest.approx([2.0, -1.0])
    sema.switch()
    assert model.w is live_tensor                     # same object: the optimizer still owns it
    assert model.w.tolist() == pytest.approx([2.0, -1.0])
    assert sema.module.w.tolist() == pytest.approx([2.0, -1.0])  # φ keeps its value
    set_weights(model, [6.0, 3.0])
    sema.update()                                     # φ = .75·(2,-1) + .25·(6,3) = (3, 0)
    assert sema.module.w.tolist() == pytest.approx([3.0, 0.0])
    assert model.w.tolist() == pytest.approx([6.0, 3.0])  # no switch without asking
    assert sema.num_switches == 1


def test_switch_every_counts_updates_and_on_epoch_end():
    model = TwoParams(0.0, 0.0)
    sema = SwitchEMA(model, momentum=0.5, switch_every=3)
    for step in range(1, 7):
        set_weights(model, [float(step), 0.0])
        sema.update()
        assert sema.num_switches == step // 3
        if step % 3 == 0:
            assert torch.equal(model.w, sema.module.w)
    sema.on_epoch_end()                               # counted in updates: the epoch end does not switch
    assert sema.num_switches == 2

    by_epoch = SwitchEMA(TwoParams(), momentum=0.5)
    by_epoch.on_epoch_end()
    assert by_epoch.num_switches == 1


def test_ema_equals_pytorch_averaged_model_on_a_real_network():
    torch.manual_seed(0)
    model = mlp(2, (32, 32), 3)
    ours = EMA(model, momentum=0.97)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.97))
    reference.update_parameters(model)   # its first call copies θ₀, as our constructor does
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(64, 2), torch.randint(0, 3, (64,))
    for _ in range(200):
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        ours.update()
        reference.update_parameters(model)
    for a, b in zip(ours.module.parameters(), reference.module.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_switch_keeps_optimizer_state_and_the_optimizer_trains_the_same_tensors(optimizer):
    torch.manual_seed(1)
    model = mlp(2, (8,), 2)
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=0.01))
    sema = SwitchEMA(model, momentum=0.9)
    x, y = torch.randn(32, 2), torch.randint(0, 2, (32,))
    for _ in range(5):
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        sema.update()
    state_before = copy.deepcopy(opt.state_dict()["state"])
    ids_before = [id(p) for p in model.parameters()]
    sema.switch()
    assert [id(p) for p in model.parameters()] == ids_before
    for key, entry in opt.state_dict()["state"].items():
        for name, value in entry.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_before[key][name])), name
    for p, phi in zip(model.parameters(), sema.module.parameters()):
        assert torch.equal(p, phi)
    before = [p.detach().clone() for p in model.parameters()]
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert {id(p) for p in opt.param_groups[0]["params"]} == set(ids_before)


def _bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def _train_bn(model, averager, steps=4):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        model(torch.randn(16, 3) * 3 + 1).sum().backward()
        opt.step()
        opt.zero_grad()
        averager.update()


def test_buffer_policy_copy_takes_live_batchnorm_statistics():
    model = _bn_model()
    ema = EMA(model, momentum=0.9, buffers="copy")
    _train_bn(model, ema)
    bn_live, bn_avg = model[1], ema.module[1]
    assert torch.equal(bn_avg.running_mean, bn_live.running_mean)
    assert torch.equal(bn_avg.running_var, bn_live.running_var)
    assert bn_avg.num_batches_tracked.dtype == torch.long
    assert bn_avg.num_batches_tracked.item() == bn_live.num_batches_tracked.item() == 4


def test_buffer_policy_average_averages_floating_buffers_and_switches_them():
    model = _bn_model()
    sema = SwitchEMA(model, momentum=0.5, buffers="average")
    expected = model[1].running_mean.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        model(torch.randn(16, 3) * 3 + 1).sum().backward()
        opt.step()
        opt.zero_grad()
        sema.update()
        expected = 0.5 * expected + 0.5 * model[1].running_mean
    torch.testing.assert_close(sema.module[1].running_mean, expected)
    assert sema.module[1].num_batches_tracked.item() == 3          # integers copied, never averaged
    sema.switch()
    torch.testing.assert_close(model[1].running_mean, expected)


def test_state_dict_round_trip_continues_bit_identically():
    def run(steps, resume_at=None):
        torch.manual_seed(0)
        model = _bn_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        sema = SwitchEMA(model, momentum=0.9, switch_every=3)
        gen = torch.Generator().manual_seed(1)
        for step in range(steps):
            if step == resume_at:
                saved = copy.deepcopy((model.state_dict(), opt.state_dict(), sema.state_dict()))
                model = _bn_model()
                opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                sema = SwitchEMA(model, momentum=0.5)
                model.load_state_dict(saved[0])
                opt.load_state_dict(saved[1])
                sema.load_state_dict(saved[2])
            model(torch.randn(8, 3, generator=gen)).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
            sema.update()
        return model, sema

    straight, resumed = run(10), run(10, resume_at=5)
    assert resumed[1].momentum == 0.9 and resumed[1].switch_every == 3
    assert resumed[1].num_switches == straight[1].num_switches == 3
    for a, b in zip(straight[1].module.state_dict().values(), resumed[1].module.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight[0].state_dict().values(), resumed[0].state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_weights(dtype):
    model = mlp(2, (4,), 2).to(dtype)
    sema = SwitchEMA(model, momentum=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    expected = [(0.5 * a.float() + 0.5 * p.float()) for a, p in zip(sema.module.parameters(), model.parameters())]
    sema.update()
    for phi, e in zip(sema.module.parameters(), expected):
        assert phi.dtype == dtype
        torch.testing.assert_close(phi.float(), e, rtol=1e-2, atol=1e-2)
    sema.switch()
    assert all(torch.equal(p, phi) for p, phi in zip(model.parameters(), sema.module.parameters()))


def test_works_for_a_cnn_with_mixed_parameter_and_buffer_dtypes():
    model = small_cnn(3, 10, width=8)
    sema = SwitchEMA(model, momentum=0.9)
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    sema.update()
    sema.switch()
    assert sema.num_switches == 1


@pytest.mark.parametrize("bad, message", [
    (dict(momentum=1.0), "momentum must be in \\[0, 1\\)"),
    (dict(momentum=-0.1), "momentum must be in \\[0, 1\\)"),
    (dict(momentum="0.9"), "momentum must be a number"),
    (dict(switch_every=0), "switch_every must be an integer >= 1"),
    (dict(switch_every=2.5), "switch_every must be an integer >= 1"),
    (dict(buffers="mean"), "buffers must be one of"),
])
def test_bad_arguments_raise_clear_value_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        SwitchEMA(TwoParams(), **bad)


def test_model_without_parameters_is_refused():
    for cls in (EMA, SwitchEMA, SWA, Lookahead, NoAverage):
        with pytest.raises(ValueError, match="no parameters"):
            cls(nn.ReLU())
    with pytest.raises(ValueError, match="torch.nn.Module"):
        EMA("not a model")


def test_momentum_zero_makes_the_average_the_live_weights():
    model = TwoParams()
    ema = EMA(model, momentum=0.0)
    set_weights(model, [7.0, 8.0])
    ema.update()
    assert ema.module.w.tolist() == [7.0, 8.0]


def test_swa_is_the_equal_average_of_epoch_end_weights_from_start():
    model = TwoParams(0.0, 0.0)
    swa = SWA(model, start=1)
    assert swa.module is model                       # nothing averaged yet: evaluate θ
    for epoch_end in ([1.0, 1.0], [2.0, 4.0], [4.0, 7.0]):
        set_weights(model, epoch_end)
        swa.update()
        swa.on_epoch_end()
    assert swa.num_averaged == 2                     # epoch 0 was before the start
    assert swa.module.w.tolist() == pytest.approx([3.0, 5.5])
    with pytest.raises(ValueError, match="start"):
        SWA(model, start=-1)


def test_swa_update_bn_recomputes_statistics():
    model = _bn_model()
    swa = SWA(model)
    swa.on_epoch_end()
    data = [torch.randn(32, 3) + 5 for _ in range(4)]
    swa.update_bn(data)
    assert swa.module[1].running_mean.abs().sum() > 0


def test_lookahead_pulls_slow_weights_every_k_steps_and_resets_fast_weights():
    model = TwoParams(0.0, 0.0)
    la = Lookahead(model, k=2, alpha=0.5)
    set_weights(model, [2.0, 2.0])
    la.update()                                      # step 1: nothing happens to the slow weights
    assert la.module.w.tolist() == [0.0, 0.0]
    set_weights(model, [4.0, -4.0])
    la.update()                                      # step 2: φ ← φ + .5(θ − φ) = (2, −2); θ ← φ
    assert la.module.w.tolist() == [2.0, -2.0]
    assert model.w.tolist() == [2.0, -2.0]
    with pytest.raises(ValueError, match="alpha"):
        Lookahead(model, alpha=0.0)
    with pytest.raises(ValueError, match="k must be"):
        Lookahead(model, k=0)


def test_make_averager_builds_every_method_and_refuses_unknown_names():
    model = TwoParams()
    kinds = {m: type(make_averager(m, model, momentum=0.9)) for m in ("sgd", "ema", "sema", "swa", "lookahead")}
    assert kinds == {"sgd": NoAverage, "ema": EMA, "sema": SwitchEMA, "swa": SWA, "lookahead": Lookahead}
    with pytest.raises(ValueError, match="method must be one of"):
        make_averager("adamw", model)


def test_repr_states_the_settings():
    assert repr(SwitchEMA(TwoParams(), 0.99, switch_every=5)) == \
        "SwitchEMA(momentum=0.99, switch_every=5, buffers='copy')"


# ------------------------------------------------------------------------------------ warm-up


def test_warmup_formulas_step_by_step_against_hand_computation():
    model = TwoParams(0.0, 0.0)
    alpha, T, r, p = 0.99, 4, 0.9, 2 / 3
    linear = EMA(model, alpha, warmup="linear", warmup_steps=T)
    power = EMA(model, alpha, warmup="power", warmup_steps=T)
    phi_linear, phi_power = 0.0, 0.0
    for t in range(7):
        set_weights(model, [float(t + 1), 0.0])
        a_linear = (1 - (1 - t / T) * (1 - r)) * alpha if t < T else alpha
        gamma = T / ((1 - alpha) ** (-1 / p) - 1)
        a_power = min(alpha, 1 - (1 + t / gamma) ** (-p))
        assert linear.current_momentum == pytest.approx(a_linear, rel=1e-12)
        assert power.current_momentum == pytest.approx(a_power, rel=1e-12)
        linear.update()
        power.update()
        phi_linear = a_linear * phi_linear + (1 - a_linear) * (t + 1)
        phi_power = a_power * phi_power + (1 - a_power) * (t + 1)
        assert linear.module.w[0].item() == pytest.approx(phi_linear, rel=1e-12)
        assert power.module.w[0].item() == pytest.approx(phi_power, rel=1e-12)
    assert linear.current_momentum == power.current_momentum == alpha
    assert EMA(model, 0.99).current_momentum == 0.99                 # the default: no warm-up


def _warmup_engine_config(warmup):
    from sema_demo.training import TrainConfig
    return TrainConfig(methods=("sgd", "ema", "sema", "lookahead"), seeds=(0, 1), epochs=4, batch_size=16,
                       ema_momentum=0.9, lookahead_k=3, ema_warmup=warmup, ema_warmup_epochs=1.5, device="cpu")


@pytest.mark.parametrize("warmup", ["linear", "power"])
def test_engine_warmup_batched_path_equals_generic_path(warmup):
    """float64, so a second formula (not rounding) would show; the ramp ends mid-epoch 2."""
    from sema_demo.training import Trainer
    from tests.test_training import blobs, weights
    data = blobs(dtype=torch.float64)
    model_fn = lambda: mlp(2, (8,), 2).double()  # noqa: E731
    generic = Trainer(data, model_fn, _warmup_engine_config(warmup), batched=False)
    batched = Trainer(data, model_fn, _warmup_engine_config(warmup), batched=True)
    plain = Trainer(data, model_fn, _warmup_engine_config(None), batched=True)
    generic.run(), batched.run(), plain.run()
    assert generic.steps_per_epoch == 3     # so the ramp is round(1.5 · 3) = 4 or 5 steps
    for run in generic.runs:
        torch.testing.assert_close(weights(generic.models()[run]), weights(batched.models()[run]),
                                   rtol=0, atol=1e-12)
    averager = generic._engine.runs[("sema", 0)].averager
    assert averager.warmup == warmup and averager.warmup_steps in (4, 5)
    # the warm-up changes EMA and SEMA, and only them
    assert not torch.allclose(weights(plain.models()[("ema", 0)]), weights(batched.models()[("ema", 0)]))
    torch.testing.assert_close(weights(plain.models()[("sgd", 0)]), weights(batched.models()[("sgd", 0)]),
                               rtol=0, atol=0)


def test_engine_warmup_settings_are_validated():
    from sema_demo.training import TrainConfig
    with pytest.raises(ValueError, match="ema_warmup must be None or one of"):
        TrainConfig(ema_warmup="cosine")
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="ema_warmup_epochs must be a positive number"):
            TrainConfig(ema_warmup="linear", ema_warmup_epochs=bad)


def _train(model, sema, opt, steps, gen, resume=None):
    """``steps`` SGD steps on random data; ``resume(step)`` may swap everything mid-run."""
    for step in range(steps):
        if resume is not None:
            model, sema, opt = resume(step, model, sema, opt)
        model(torch.randn(8, 3, generator=gen)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        sema.update()
    return model, sema, opt


def test_resume_mid_warmup_is_bit_identical():
    def build():
        torch.manual_seed(0)
        model = _bn_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        return model, SwitchEMA(model, 0.95, switch_every=4, buffers="average", warmup="linear",
                                warmup_steps=8), opt

    def resume(step, model, sema, opt):
        if step != 3:
            return model, sema, opt
        saved = copy.deepcopy((model.state_dict(), opt.state_dict(), sema.state_dict()))
        model, sema, opt = build()
        sema = SwitchEMA(model, 0.5, buffers="average")      # other settings: the state brings them back
        model.load_state_dict(saved[0])
        opt.load_state_dict(saved[1])
        sema.load_state_dict(saved[2])
        return model, sema, opt

    straight = _train(*build(), 12, torch.Generator().manual_seed(1))
    resumed = _train(*build(), 12, torch.Generator().manual_seed(1), resume)
    assert resumed[1].warmup == "linear" and resumed[1].warmup_steps == 8 and resumed[1].num_updates == 12
    for a, b in zip([*straight[1].module.state_dict().values(), *straight[0].state_dict().values()],
                    [*resumed[1].module.state_dict().values(), *resumed[0].state_dict().values()]):
        assert torch.equal(a, b)


def test_update_every_k_with_alpha_to_the_k_keeps_the_horizon():
    alpha, k = 0.9, 4
    # θ constant: k updates of α are exactly one of α^k
    model = TwoParams(1.0, -2.0)
    every, sparse = EMA(model, alpha), EMA(model, alpha, update_every=k)
    set_weights(model, [3.0, 5.0])
    for _ in range(3 * k):
        every.update(), sparse.update()
    torch.testing.assert_close(every.module.w, sparse.module.w, rtol=1e-12, atol=0)
    assert sparse.num_updates == 3 * k
    # θ drifting at a constant speed v: both lag θ by about the horizon α/(1 − α)·v; sampling every
    # k-th step adds at most (k − 1)/2 steps of drift to the lag
    model, v = TwoParams(0.0, 0.0), 0.01
    every, sparse = EMA(model, alpha), EMA(model, alpha, update_every=k)
    for t in range(1, 401):
        set_weights(model, [t * v, 0.0])
        every.update(), sparse.update()
    lag_every, lag_sparse = 400 * v - every.module.w[0].item(), 400 * v - sparse.module.w[0].item()
    assert lag_every == pytest.approx(alpha / (1 - alpha) * v, rel=1e-6)
    assert 0 <= lag_every - lag_sparse <= (k - 1) / 2 * v


def test_bf16_weights_with_a_float32_average_track_a_float32_reference():
    """α = 0.999, 2,000 updates of a steadily drifting bf16 θ: a bf16 φ stalls, a float32 φ does not."""
    alpha, steps = 0.999, 2000
    model = nn.Linear(64, 1).to(torch.bfloat16)
    start = [p.detach().double().clone() for p in model.parameters()]
    with pytest.warns(RuntimeWarning, match="can stall. Pass dtype=torch.float32"):
        stalled = EMA(model, alpha)
    tracked = EMA(model, alpha, dtype=torch.float32)
    reference = [s.clone() for s in start]
    for t in range(1, steps + 1):
        with torch.no_grad():
            for p, s in zip(model.parameters(), start):
                p.copy_(s + 1e-3 * t)                     # θ itself rounded to bf16
        for r, p in zip(reference, model.parameters()):
            r.mul_(alpha).add_(p.double(), alpha=1 - alpha)
        stalled.update(), tracked.update()
    for ref, fp32, bf16, s in zip(reference, tracked.module.parameters(), stalled.module.parameters(), start):
        assert fp32.dtype == torch.float32 and bf16.dtype == torch.bfloat16
        assert (fp32.double() - ref).abs().max() < 1e-3
        assert (bf16.double() - ref).abs().max() > 0.1       # the bf16 average fell far behind
        assert (ref - s).min() > 1.0                         # the reference moved by more than 1
    sema = SwitchEMA(model, alpha, dtype=torch.float32)
    sema.switch()                                            # cast back into θ's dtype
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


@pytest.mark.parametrize("dtype", [None, torch.float64])
def test_swap_puts_phi_in_the_live_model_and_restores_theta_bit_identically(dtype):
    torch.manual_seed(0)
    model = _bn_model()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sema = SwitchEMA(model, 0.9, buffers="average", dtype=dtype)
    _train(model, sema, opt, 5, torch.Generator().manual_seed(1))
    theta = copy.deepcopy(model.state_dict())
    phi = copy.deepcopy(sema.module.state_dict())
    opt_state = copy.deepcopy(opt.state_dict())
    params = list(model.parameters())
    with sema.swap() as swapped:
        assert swapped is model
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                torch.testing.assert_close(t, phi[name].to(t.dtype), rtol=0, atol=0)
    assert list(model.parameters()) == params or all(a is b for a, b in zip(model.parameters(), params))
    for name, t in model.state_dict().items():
        assert torch.equal(t, theta[name])
    for name, t in sema.module.state_dict().items():
        assert torch.equal(t, phi[name])
    assert str(opt.state_dict()) == str(opt_state)
    with pytest.raises(KeyError), sema.swap():              # an error inside still restores θ
        raise KeyError("boom")
    assert all(torch.equal(t, theta[n]) for n, t in model.state_dict().items())


def test_checkpoint_keys_carry_no_compile_or_ddp_prefix_and_load_across_wrappers():
    torch.manual_seed(0)
    plain = mlp(2, (4,), 2)
    compiled = torch.compile(copy.deepcopy(plain), backend="eager")
    sema_compiled = SwitchEMA(compiled, 0.9)
    compiled(torch.randn(3, 2)).sum().backward()         # the compiled module trains the same tensors
    keys = set(sema_compiled.state_dict()["module"])
    assert keys == set(plain.state_dict()) and not any("_orig_mod" in k or k.startswith("module.") for k in keys)
    sema_plain = SwitchEMA(plain, 0.9)
    state = sema_plain.state_dict()
    wrapped = {**state, "module": {f"module._orig_mod.{k}": v + 1 for k, v in state["module"].items()}}
    sema_compiled.load_state_dict(wrapped)               # as saved from a compiled model inside DDP
    for k, v in state["module"].items():
        assert torch.equal(sema_compiled.module.state_dict()[k], v + 1)
    sema_compiled.switch()
    assert torch.equal(compiled._orig_mod[0].weight, state["module"]["0.weight"] + 1)


# ------------------------------------------------------- averagers built before their weights (issue 18)


def test_update_refuses_weights_loaded_replaced_or_converted_after_construction_and_reset_reseeds():
    model = _bn_model()
    sema = SwitchEMA(model, 0.9)
    checkpoint = {k: v + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(checkpoint)
    with pytest.raises(ValueError, match=r"loaded \(load_state_dict\) after this averager.*\.reset\(\)"):
        sema.update()
    with pytest.raises(ValueError, match="reset"):
        sema.switch()                                     # nor would it write the old weights back
    sema.reset()
    assert all(torch.equal(sema.module.state_dict()[k], v) for k, v in model.state_dict().items())
    sema.update()
    assert sema.num_updates == 1
    model[0] = nn.Linear(3, 4)                            # a replaced layer would silently not be averaged
    with pytest.raises(ValueError, match=r"replaced after this averager was built.*\.reset\(\)"):
        sema.update()
    sema.reset()
    sema.update()
    model.double()
    with pytest.raises(ValueError, match=r"(changed dtype|replaced).*\.reset\(\)"):
        sema.update()
    sema.reset()
    sema.update()
    assert sema.module[0].weight.dtype == torch.float64
    with torch.no_grad():
        model[0].weight.data = torch.zeros(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="changed dtype, device or shape"):
        sema.update()


def test_float32_average_with_momentum_near_one_warns_that_it_stalls():
    with pytest.warns(RuntimeWarning, match="momentum 0.99999 with a torch.float32 average.*stall"):
        EMA(TwoParams().float(), 0.99999)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EMA(TwoParams().float(), 0.9999)
        EMA(TwoParams(), 0.99999)                          # float64 has the digits


def _snapshot(averager):
    return copy.deepcopy(averager.state_dict())


@pytest.mark.parametrize("build, corrupt, message", [
    (lambda m: SwitchEMA(m, 0.9), {"momentum": 1.5}, r"momentum must be in \[0, 1\)"),
    (lambda m: SwitchEMA(m, 0.9), {"switch_every": 0}, "switch_every must be an integer >= 1"),
    (lambda m: SwitchEMA(m, 0.9), {"num_switches": -1}, "num_switches must be an integer >= 0"),
    (lambda m: SwitchEMA(m, 0.9), {"warmup": "cosine"}, "warmup must be None or one of"),
    (lambda m: Lookahead(m, k=5), {"k": 0}, "k must be an integer >= 1"),
    (lambda m: Lookahead(m, k=5), {"alpha": 0.0}, r"alpha must be in \(0, 1\]"),
    (lambda m: SWA(m), {"start": -1}, "start must be an integer >= 0"),
])
def test_load_state_dict_validates_everything_before_it_writes_anything(build, corrupt, message):
    model = _bn_model()
    target = build(model)
    source = build(_bn_model())
    _train(model, target, torch.optim.SGD(model.parameters(), lr=0.1), 3, torch.Generator().manual_seed(0))
    before = _snapshot(target)
    with pytest.raises(ValueError, match=message):
        target.load_state_dict({**source.state_dict(), **corrupt})
    after = _snapshot(target)
    assert str({k: v for k, v in after.items() if k not in ("module", "averaged")}) == \
        str({k: v for k, v in before.items() if k not in ("module", "averaged")})
    key = "averaged" if "averaged" in before else "module"
    assert all(torch.equal(a, b) for a, b in zip(before[key].values(), after[key].values()))


def test_an_ema_state_loaded_into_switch_ema_is_refused_and_changes_nothing():
    model = _bn_model()
    sema, ema = SwitchEMA(model, 0.9), EMA(_bn_model(), 0.5)
    before = _snapshot(sema)
    with pytest.raises(ValueError, match="saved by EMA, not SwitchEMA"):
        sema.load_state_dict(ema.state_dict())
    legacy = {k: v for k, v in ema.state_dict().items() if k in ("module", "momentum", "buffers", "num_updates")}
    with pytest.raises(ValueError, match="not a SwitchEMA state: it lacks switch_every, num_switches"):
        sema.load_state_dict(legacy)
    with pytest.raises(ValueError, match="does not fit this model"):
        sema.load_state_dict({**before, "module": SwitchEMA(mlp(2, (4,), 2)).state_dict()["module"]})
    after = _snapshot(sema)
    assert after["momentum"] == 0.9 and all(torch.equal(a, b) for a, b in
                                            zip(before["module"].values(), after["module"].values()))


def test_numpy_scalars_are_numbers_and_bools_are_not():
    np = pytest.importorskip("numpy")
    sema = SwitchEMA(TwoParams(), np.float32(0.9), switch_every=np.int64(5), update_every=np.int32(1))
    assert sema.momentum == pytest.approx(0.9) and sema.switch_every == 5 and type(sema.switch_every) is int
    assert Lookahead(TwoParams(), k=np.int64(3), alpha=np.float64(0.5)).k == 3
    for bad in (dict(momentum=True), dict(momentum=np.bool_(True)), dict(switch_every=True),
                dict(switch_every=np.bool_(True)), dict(switch_every=np.float64(5.0))):
        with pytest.raises(ValueError, match="must be"):
            SwitchEMA(TwoParams(), **{"momentum": 0.9, **bad})


def test_loading_into_copies_of_the_model_or_into_phi_is_not_mistaken_for_a_late_load():
    model = _bn_model()
    sema = SwitchEMA(model, 0.9)
    copy.deepcopy(model).load_state_dict(model.state_dict())
    sema.module.load_state_dict(model.state_dict())
    sema.update()
    fresh = SwitchEMA(copy.deepcopy(model), 0.9)          # a copy's load alarms only its own averager
    fresh.model.load_state_dict(model.state_dict())
    sema.update()
    with pytest.raises(ValueError, match="loaded"):
        fresh.update()


def test_averagers_document_that_they_are_not_thread_safe():
    import sema_demo.averaging as averaging
    from pathlib import Path
    assert "An averager is not thread-safe" in averaging.__doc__
    assert "An averager is not thread-safe" in (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_pieces_give_the_unsplit_update_and_switch_and_follow_swapped_storage(dtype):
    """On the CPU the update runs on flat pieces below the parallel grain (and a float32 φ of bf16
    weights converts in L2-sized runs): the same numbers as one lerp per whole tensor; θ's storage
    swapped under a parameter (``p.data = …``) is followed, not left behind in stale views."""
    from sema_demo import averaging
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 400), nn.ReLU(), nn.Linear(400, 3)).to(dtype)   # 120,000 weights: 4 pieces
    assert model[0].weight.numel() > averaging.CPU_PIECE
    sema = SwitchEMA(model, momentum=0.9, dtype=torch.float32)
    reference = [p.detach().float().clone() for p in model.parameters()]
    for step in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        if step == 1:
            model[0].weight.data = model[0].weight.data.clone() + 1.0       # new storage, same tensor object
        sema.update()
        for ref, p in zip(reference, model.parameters()):
            ref.lerp_(p.detach().float(), 0.1)
    for ref, phi in zip(reference, sema.module.parameters()):
        torch.testing.assert_close(phi, ref, rtol=0, atol=0)
    sema.switch()
    for phi, p in zip(sema.module.parameters(), model.parameters()):
        assert torch.equal(p, phi.to(dtype))
