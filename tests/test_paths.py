"""Weight paths on their own loss surface (sema_demo.paths): recording, planes, projection, surface."""
from functools import partial

import numpy as np
import pytest
import torch

from sema_demo import paths
from sema_demo.datasets import images as image_data
from sema_demo.datasets.toy import toy_data
from sema_demo.models import mlp, small_cnn
from sema_demo.paths import (PATH_COLUMNS, PathRecorder, pca_plane, point_losses, project, solutions_plane,
                             state_vector, study_paths, surface_grid)
from sema_demo.sharpness import LossSurface
from sema_demo.training import Trainer, TrainConfig

TOY = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1), epochs=4, batch_size=16, lr=0.1,
                  ema_momentum=0.9, record_paths=True)


@pytest.fixture(scope="module")
def toy():
    trainer = Trainer(toy_data("moons", 200, 0.3), partial(mlp, 2, (8, 8), 2, "tanh"), TOY)
    trainer.run()
    return trainer


@pytest.fixture(scope="module")
def cnn():
    """The per-run path with BatchNorm: a tiny CNN on a few Digits."""
    data = image_data.make_data(image_data.load_images("digits"), 4, 20, seed=0, device="cpu", augment=False)
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0,), epochs=2, batch_size=8, lr=0.05,
                         ema_momentum=0.8, record_paths=True, device="cpu")
    trainer = Trainer(data, partial(small_cnn, 1, 10, 4), config)
    trainer.run()
    assert not trainer.batched
    return trainer


@pytest.mark.parametrize("which", ["toy", "cnn"])
def test_the_surface_at_each_defining_point_is_the_models_own_loss(which, request):
    trainer = request.getfixturevalue(which)
    models = trainer.models()
    study = study_paths(trainer.recorder, models, seed=trainer.config.seeds[0], plane="solutions")
    points = point_losses(study, models, trainer.x_train, trainer.y_train)
    assert [p["method"] for p in points] == ["sgd", "ema", "sema"]
    assert points[0]["x"] == 0 and points[0]["y"] == 0          # SGD's end is the origin
    for p in points:
        own = LossSurface(models[(p["method"], p["seed"])], trainer.x_train, trainer.y_train).loss()
        assert p["loss"] == pytest.approx(own, abs=1e-6)
        assert p["surface_loss"] == pytest.approx(own, abs=1e-5)
    # and the same numbers from the grid evaluator, on a grid whose nodes include the points
    grid = surface_grid(study, models[("sgd", study.seed)], trainer.x_train, trainer.y_train, resolution=5)
    assert grid.loss.shape == (5, 5) and np.isfinite(grid.loss).all()


def test_grid_is_indexed_iy_ix():
    trainer = Trainer(toy_data("moons", 100, 0.3), partial(mlp, 2, (4,), 2), TOY)
    trainer.run()
    models = trainer.models()
    study = study_paths(trainer.recorder, models, 0)
    grid = surface_grid(study, models[("sgd", 0)], trainer.x_train, trainer.y_train, resolution=4)
    study.points = [{"method": "sgd", "seed": 0, "x": float(grid.x[3]), "y": float(grid.y[1])}]
    at = point_losses(study, models, trainer.x_train, trainer.y_train)[0]["surface_loss"]
    assert at == pytest.approx(grid.loss[1, 3], abs=1e-5)


def test_a_path_in_a_2d_affine_subspace_projects_exactly_and_pca_matches_numpy():
    gen = torch.Generator().manual_seed(0)
    n, t = 50, 40
    origin, span = torch.randn(n, generator=gen, dtype=torch.float64), torch.randn(2, n, generator=gen,
                                                                                   dtype=torch.float64)
    a = torch.cumsum(torch.randn(t, 2, generator=gen, dtype=torch.float64), 0) * torch.tensor([3.0, 1.0],
                                                                                               dtype=torch.float64)
    path = origin + a @ span
    plane = pca_plane(path)
    p = project(path, plane)
    assert p.residual < 1e-4 and p.in_plane == pytest.approx(1.0, abs=1e-5)
    s = np.linalg.svd((path - path.mean(0)).numpy(), compute_uv=False)
    assert plane.explained == pytest.approx(tuple(s[:2] ** 2 / (s ** 2).sum()), abs=1e-6)
    assert sum(plane.explained) == pytest.approx(1.0, abs=1e-6)
    # the plane through three points of the subspace holds the whole path too
    through = solutions_plane({"sgd": path[0], "ema": path[10], "sema": path[-1]})
    assert project(path, through).residual < 1e-4
    torch.testing.assert_close(through.basis.double() @ through.basis.double().T, torch.eye(2, dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_pca_on_a_noisy_path_explains_less_and_says_so():
    gen = torch.Generator().manual_seed(1)
    path = torch.randn(30, 20, generator=gen)
    plane = pca_plane(path)
    assert 0 < sum(plane.explained) < 1
    assert project(path, plane).in_plane < 1


@pytest.mark.parametrize("which", ["toy", "cnn"])
def test_every_method_of_a_seed_starts_at_one_point(which, request):
    trainer = request.getfixturevalue(which)
    for seed in trainer.config.seeds:
        starts = [trainer.recorder.path((m, seed)) for m in trainer.config.methods]
        for path in starts:
            assert path.kinds[0] == "start" and path.steps[0] == 0
            torch.testing.assert_close(path.live[0], starts[0].live[0], rtol=0, atol=0)
            if path.average is not None:
                torch.testing.assert_close(path.average[0], starts[0].live[0], rtol=0, atol=0)
        study = study_paths(trainer.recorder, trainer.models(), seed)
        first = study.frame[study.frame.step == 0]
        assert np.ptp(first.x) < 1e-5 and np.ptp(first.y) < 1e-5


@pytest.mark.parametrize("which", ["toy", "cnn"])
@pytest.mark.parametrize("plane", ["solutions", "pca"])
def test_semas_projected_theta_jumps_onto_its_phi_at_every_switch(which, plane, request):
    trainer = request.getfixturevalue(which)
    study = study_paths(trainer.recorder, trainer.models(), trainer.config.seeds[0], plane)
    sema = study.frame[study.frame.method == "sema"]
    live, average = sema[sema.weights == "live"], sema[sema.weights == "average"]
    after = live[live.kind == "switch"]
    before = live[live.kind == "epoch"]
    assert len(after) == trainer.config.epochs == len(before)
    for (_, b), (_, a) in zip(before.iterrows(), after.iterrows()):
        assert b.step == a.step
        phi = average[(average.step == a.step) & (average.kind == "switch")].iloc[0]
        assert (a.x, a.y) == pytest.approx((phi.x, phi.y), abs=1e-6)        # θ lands on φ
    jumps = np.hypot(after.x.to_numpy() - before.x.to_numpy(), after.y.to_numpy() - before.y.to_numpy())
    assert (jumps > 0).any()                                                  # and it did move


def test_frame_columns_and_in_plane_fractions(toy):
    study = study_paths(toy.recorder, toy.models(), 1, "pca")
    assert list(study.frame.columns[:7]) == PATH_COLUMNS
    assert set(study.frame.weights) == {"live", "average"}
    assert set(study.frame[study.frame.weights == "average"].method) == {"ema", "sema"}   # SGD has no φ
    assert all(0 < f <= 1 for f in study.in_plane.values())
    assert study.plane.explained is not None and 0 < sum(study.plane.explained) <= 1 + 1e-9


def test_the_recording_is_bounded_in_memory(monkeypatch):
    data = toy_data("moons", 400, 0.3)
    model_fn = partial(mlp, 2, (16, 16), 2)
    n = state_vector(model_fn()).numel()
    config = TrainConfig(seeds=(0, 1), epochs=5, batch_size=1, record_paths=True)   # 320 steps an epoch
    trainer = Trainer(data, model_fn, config)
    recorder = trainer.recorder
    per_snapshot = (6 + 4) * n * 2                 # θ of 6 runs and φ of 4, float16
    assert recorder.snapshot_bytes == per_snapshot
    assert recorder.bound_bytes <= recorder.budget_bytes
    trainer.run()
    step_snapshots = recorder.kinds.count("step")
    assert step_snapshots <= 300 and recorder.kinds.count("epoch") == 5 and recorder.kinds.count("switch") == 5
    assert recorder.nbytes <= recorder.bound_bytes
    assert recorder.nbytes == len(recorder.steps) * per_snapshot
    # a smaller budget keeps fewer step snapshots, and the bound still holds
    small = PathRecorder(trainer.runs, n, trainer.steps_per_epoch, 5, 1, budget_bytes=40 * per_snapshot)
    assert small.bound_bytes <= 40 * per_snapshot and small.every > recorder.every
    # too small for the epoch ends: recording is skipped with a reason, training is not affected
    skipped = PathRecorder([("sgd", 0)], n, 10, 3, 1, budget_bytes=2 * n * 2)
    assert skipped.skipped and "MB" in skipped.skipped and skipped.bound_bytes == 0
    monkeypatch.setattr(paths, "PATH_MEMORY_BYTES", 4 * per_snapshot)
    tiny = Trainer(data, model_fn, TrainConfig(seeds=(0, 1), epochs=5, batch_size=64, record_paths=True))
    assert tiny.recorder.skipped and not tiny.recorder.snapshots
    plain = Trainer(data, model_fn, TrainConfig(seeds=(0, 1), epochs=5, batch_size=64))
    assert tiny.run().drop(columns="seconds").equals(plain.run().drop(columns="seconds"))
    assert tiny.recorder.nbytes == 0


def test_recording_changes_no_number_and_both_paths_record_alike():
    data = toy_data("circles", 120, 0.1)
    model_fn = partial(mlp, 2, (6,), 2)
    plain = TrainConfig(seeds=(0, 1), epochs=3, batch_size=16)
    histories = {}
    for record in (False, True):
        for batched in (True, False):
            cfg = TrainConfig(**{**vars(plain), "record_paths": record})
            trainer = Trainer(data, model_fn, cfg, batched=batched)
            frame = trainer.run()
            histories[(record, batched)] = frame.drop(columns="seconds")
            if record:
                histories[("paths", batched)] = trainer.recorder.path(("sema", 1))
    assert histories[(True, True)].equals(histories[(False, True)])
    assert histories[(True, False)].equals(histories[(False, False)])
    a, b = histories[("paths", True)], histories[("paths", False)]
    assert a.kinds == b.kinds and (a.steps == b.steps).all()
    torch.testing.assert_close(a.live, b.live, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(a.average, b.average, atol=1e-4, rtol=1e-3)


def test_modules_read_in_place_train_alike_when_their_averagers_work_in_pieces():
    """The per-run engine makes each module's tensors views of one flat tensor for the recorder;
    a layer larger than the averagers' CPU piece (they then average in views of pieces) must be
    averaged, switched and recorded as without that."""
    from sema_demo.averaging import CPU_PIECE
    data, model_fn = toy_data("moons", 96, 0.2), partial(mlp, 2, (200, 200), 2)
    assert 200 * 200 > CPU_PIECE
    config = TrainConfig(methods=("sgd", "ema", "sema", "lookahead"), seeds=(0,), epochs=3, batch_size=32)
    plain = Trainer(data, model_fn, config, batched=False)
    frame = plain.run().drop(columns="seconds")
    recording = Trainer(data, model_fn, TrainConfig(**{**vars(config), "record_paths": True}), batched=False)
    assert recording.run().drop(columns="seconds").equals(frame)
    for run in recording.runs:
        path = recording.recorder.path(run)
        final = recording._engine.state_rows(False)[recording.runs.index(run)]
        torch.testing.assert_close(path.live[-1], final, atol=2e-3, rtol=2e-3)
        torch.testing.assert_close(final, plain._engine.state_rows(False)[plain.runs.index(run)], rtol=0, atol=0)


@pytest.mark.parametrize("in_place", [True, False], ids=["cpu-buffer", "device-chunks"])
@pytest.mark.parametrize("net", ["batched", "per-run", "cnn"])
def test_fast_snapshots_equal_the_engines_state_rows_across_flushes_and_pickling(monkeypatch, net, in_place):
    """The engine's snapshot read in place (its own layout; on the CPU a buffer that is the
    recording, on an accelerator a device buffer moved to the CPU in chunks, here forced on the
    CPU) records exactly what reading every run's state_vector would, and so does a switch's
    snapshot made from the epoch end's; SGD's row sits between two averaged rows, so the φ rows
    are picked out of the middle.  The CNN (per-run, BatchNorm buffers) reads each module's state
    in place, and trains to the same numbers as without recording."""
    import pickle
    monkeypatch.setattr(PathRecorder, "CHUNK_BYTES", 1)          # one snapshot per chunk: a flush at every record
    monkeypatch.setattr(PathRecorder, "IN_PLACE_DEVICES", ("cpu",) if in_place else ())

    class RowsOnly:                                              # the slow way: state_rows only
        def __init__(self, engine):
            self.state_rows = engine.state_rows

    config = TrainConfig(methods=("ema", "sgd", "sema"), seeds=(0, 1), epochs=3, batch_size=16, record_paths=True)
    if net == "cnn":
        data, model_fn, batched = (image_data.make_data(image_data.load_images("digits"), 4, 20, seed=0, device="cpu",
                                                        augment=False), partial(small_cnn, 1, 10, 4), False)
        config = TrainConfig(**{**vars(config), "batch_size": 8, "lr": 0.05, "device": "cpu"})
    else:
        data, model_fn, batched = toy_data("moons", 120, 0.2), partial(mlp, 2, (6, 5), 2), net == "batched"
    plain = Trainer(data, model_fn, TrainConfig(**{**vars(config), "record_paths": False}), batched=batched).run()
    trainer = Trainer(data, model_fn, config, batched=batched)
    fast = trainer.recorder
    if net != "batched":                                         # each module's state, read in place
        assert [t.data_ptr() for t in fast._stage] == [t.data_ptr() for t in trainer._engine.path_source(fast.averaged)]
    slow = PathRecorder(trainer.runs, fast.n, trainer.steps_per_epoch, config.epochs, config.switch_epochs)
    slow.record(RowsOnly(trainer._engine), "start")
    record = fast.record                                         # (after_step records through it too)

    def both(engine, kind, step=None):
        record(engine, kind, step)
        slow.record(RowsOnly(engine), kind, fast.steps[-1])
    switch = fast.record_switch                                  # a switch's snapshot made from the last one

    made = []

    def both_switch(engine, switched):
        had = len(slow.kinds)
        switch(engine, switched)
        if len(slow.kinds) == had:                               # (not taken through record)
            made.append(switched)
            slow.record(RowsOnly(engine), "switch", fast.steps[-1])
    fast.record, fast.record_switch = both, both_switch
    reads = []
    history = trainer.run(lambda rows: reads.append(fast.path(trainer.runs[-1]).live.clone()))   # a live page's reads
    assert history.drop(columns="seconds").equals(plain.drop(columns="seconds"))
    # from the recording itself where the buffer holds the epoch end's snapshot (not with a chunk per snapshot)
    assert len(made) == (config.epochs if in_place else 0) and all(len(s) == 2 for s in made)
    del fast.record, fast.record_switch                          # (a local function does not pickle)
    assert len(fast.kinds) > 3 * config.epochs and fast.kinds == slow.kinds
    final = fast.path(trainer.runs[-1]).live
    assert [len(r) for r in reads] == sorted({len(r) for r in reads}) and len(reads) == config.epochs
    for read in reads:                                           # what a read saw stays as it was
        torch.testing.assert_close(read, final[:len(read)], rtol=0, atol=0)
    copy = pickle.loads(pickle.dumps(fast))
    for run in trainer.runs:
        a, b, c = fast.path(run), slow.path(run), copy.path(run)
        torch.testing.assert_close(a.live, b.live, rtol=0, atol=0)
        torch.testing.assert_close(c.live, b.live, rtol=0, atol=0)
        assert (a.average is None) == (run[0] == "sgd")
        if a.average is not None:
            torch.testing.assert_close(a.average, b.average, rtol=0, atol=0)
            torch.testing.assert_close(c.average, b.average, rtol=0, atol=0)
        torch.testing.assert_close(a.live[-1], trainer._engine.state_rows(False)[trainer.runs.index(run)],
                                   atol=1e-3, rtol=1e-3)


def test_snapshots_at_the_due_steps_are_those_after_step_takes():
    """The Trainer asks which steps of an epoch are due and snapshots only there (no call per step):
    the same steps as calling after_step at every step, epoch ends left to their own snapshot."""
    class Engine:
        def state_rows(self, average):
            return torch.zeros(2, 3)

    def recorder():
        rec = PathRecorder([("sgd", 0), ("ema", 0)], 3, steps_per_epoch=7, epochs=9, switch_epochs=2,
                           max_step_snapshots=20)
        rec.record(Engine(), "start")
        return rec
    each, due = recorder(), recorder()
    assert 1 < each.every < 7
    for _ in range(9):
        for _ in range(7):
            each.after_step(Engine())
        each.record(Engine(), "epoch")
        steps = due.due(7)
        for k in range(1, 8):
            if k in steps:
                due.record_step(Engine(), k)
        due.advance(7)
        due.record(Engine(), "epoch")
    assert due.steps == each.steps and due.kinds == each.kinds and due.step == each.step == 63
    assert each.kinds.count("step") > 9


def test_a_recording_past_its_bound_keeps_every_snapshot():
    """The CPU buffer is sized to the bound; a recorder asked for more (an engine that snapshots
    off schedule) starts another buffer and loses nothing."""
    class Engine:
        def __init__(self):
            self.theta = torch.zeros(2, 3)

        def state_rows(self, average):
            return self.theta + (0.5 if average else 0.0)

    engine = Engine()
    recorder = PathRecorder([("sgd", 0), ("ema", 0)], 3, steps_per_epoch=1, epochs=1, switch_epochs=1,
                            max_step_snapshots=0)
    recorder.record(engine, "start")
    for k in range(1, 10):
        engine.theta += 1.0
        recorder.record(engine, "step", k)
    assert recorder.capacity < 10 and len(recorder.snapshots) == 10 and recorder.steps == list(range(10))
    path = recorder.path(("ema", 0))
    torch.testing.assert_close(path.live[:, 0], torch.arange(10.0))
    torch.testing.assert_close(path.average[:, 0], torch.arange(10.0) + 0.5)


def test_a_pickled_recording_holds_each_snapshot_once():
    """Snapshots are row views of the chunks they were flushed in; pickled (a worker's result, a
    page's job) each must travel alone, not with its chunk's whole storage."""
    import pickle
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1), epochs=4, batch_size=16, record_paths=True)
    trainer = Trainer(toy_data("moons", 200, 0.2), partial(mlp, 2, (16, 16), 2), config)
    trainer.run()
    recorder = trainer.recorder
    snapshots = sum(t.numel() * t.element_size() for t in recorder.snapshots)
    first = recorder.snapshots[0]
    assert len(recorder.snapshots) > 20 and first.untyped_storage().nbytes() > 20 * first.nbytes   # views of chunks
    pickled = pickle.dumps(recorder)
    assert snapshots < len(pickled) < 1.05 * snapshots + 64 * 2**10
    copy = pickle.loads(pickled)
    assert copy.kinds == recorder.kinds and copy.steps == recorder.steps and len(copy.snapshots) == len(recorder.snapshots)
    for run in trainer.runs:
        torch.testing.assert_close(copy.path(run).live, recorder.path(run).live, rtol=0, atol=0)


@pytest.mark.parametrize("batched", [True, False])
def test_a_path_read_every_epoch_equals_the_path_decoded_at_once(batched):
    """A live page reads the paths once an epoch: the snapshots recorded since the last read are
    decoded on their own and appended, and the result is the whole recording decoded at once."""
    import pickle
    config = TrainConfig(methods=("ema", "sgd", "sema"), seeds=(0, 1), epochs=4, batch_size=16, record_paths=True)
    trainer = Trainer(toy_data("moons", 120, 0.2), partial(mlp, 2, (6, 5), 2), config, batched=batched)
    lengths = []
    for _ in range(config.epochs):
        trainer.run_epoch()
        lengths.append(len(trainer.recorder.path(("sema", 1)).live))
    assert lengths == sorted(set(lengths))                       # more snapshots each time
    at_once = pickle.loads(pickle.dumps(trainer.recorder))       # (a copy decodes from scratch)
    for run in trainer.runs:
        a, b = trainer.recorder.path(run), at_once.path(run)
        assert torch.equal(a.live, b.live) and (a.average is None or torch.equal(a.average, b.average))


def test_a_diverged_run_is_left_out_and_bad_plane_names_are_refused(toy):
    with pytest.raises(ValueError, match="plane must be one of"):
        study_paths(toy.recorder, toy.models(), 0, "random")
    models = dict(toy.models())
    broken = mlp(2, (8, 8), 2, "tanh")
    with torch.no_grad():
        for p in broken.parameters():
            p.fill_(float("nan"))
    models[("ema", 0)] = broken
    study = study_paths(toy.recorder, models, 0)
    assert "ema" not in set(study.frame.method) and [p["method"] for p in study.points] == ["sgd", "sema"]
    assert study.plane.note                       # two ends: the second direction came from the paths


@pytest.mark.parametrize("plane", ["solutions", "pca"])
def test_every_text_of_the_paths_pictures_grows_with_the_font_scale_and_no_end_label_overlaps(toy, plane):
    """Projector mode (display.font_scale() = 1.45): the player's background and the matplotlib figure
    set every label larger, and the end labels stay inside the plot, off every ★ and off each other."""
    from sema_demo.charts.paths import END_POINTS, background_figure, paths_figure
    from sema_demo.charts.playground import BADGE_POINTS, label_extent

    models = toy.models()
    study = study_paths(toy.recorder, models, seed=0, plane=plane)
    points = point_losses(study, models, toy.x_train, toy.y_train)
    grid = surface_grid(study, models[("sgd", 0)], toy.x_train, toy.y_train, resolution=7)

    def sizes(fig) -> dict[str, set[float]]:
        """Font sizes by kind of text: each axes' labels, title, ticks, notes (axes 1: the colour bar), legend."""
        fig.canvas.draw()                                   # ticks are made when drawn
        out: dict[str, set[float]] = {}
        for i, ax in enumerate(fig.axes):
            for kind, texts in (("labels", [ax.xaxis.label, ax.yaxis.label]), ("title", [ax._left_title]),
                                ("ticks", [*ax.get_xticklabels(), *ax.get_yticklabels()]), ("notes", ax.texts)):
                for t in texts:
                    if t.get_visible() and t.get_text():
                        out.setdefault(f"axes {i} {kind}", set()).add(t.get_fontsize())
        out["legend"] = {t.get_fontsize() for t in fig.legends[0].get_texts()}
        return out

    for build, player in ((lambda f: background_figure(study, grid, points, font_scale=f), True),
                          (lambda f: paths_figure(study, grid, points, font_scale=f), False)):
        usual, larger = build(1.0), build(1.45)
        texts = [t.get_text() for t in usual.axes[0].texts]
        assert usual.axes[1].get_ylabel() == "training loss (log scale)" and "SEMA φ" in [
            t.get_text() for t in usual.legends[0].get_texts()]
        assert sum(t.startswith("SEMA ") for t in texts) == 1          # the ends, with their loss
        a, b = sizes(usual), sizes(larger)
        assert set(a) == set(b) and {"axes 0 labels", "axes 0 title", "axes 0 ticks", "axes 0 notes",
                                     "axes 1 labels", "axes 1 ticks", "legend"} <= set(a)
        for kind in a:
            assert b[kind] == {1.45 * size for size in a[kind]}, kind
        for fig, scale in ((usual, 1.0), (larger, 1.45)):
            ax, renderer = fig.axes[0], fig.canvas.get_renderer()
            box = ax.get_window_extent(renderer)
            ends = [t for t in ax.texts if t.get_text() != "start"]
            stars = ax.transData.transform([t.xy for t in ends])
            boxes = [label_extent(t, renderer) for t in ends]
            radius = END_POINTS / 2 * fig.dpi / 72
            band = BADGE_POINTS * scale * fig.dpi / 72 if player else 0     # the player's step badge
            for i, e in enumerate(boxes):
                assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and box.y0 - 1 <= e.y0 and e.y1 <= box.y1 + 1 - band
                for x, y in stars:
                    assert np.hypot(max(e.x0 - x, x - e.x1, 0), max(e.y0 - y, y - e.y1, 0)) >= radius - 1
                for other in boxes[i + 1:]:
                    assert not e.overlaps(other), (ends[i].get_text(), [t.get_text() for t in ends])


@pytest.mark.parametrize("which", ["toy", "cnn"])
def test_a_live_study_takes_its_ends_from_the_recording_and_they_are_the_evaluated_weights(which, request):
    """Without the networks (a live tick), each end is the last recorded snapshot of the weights the
    method is evaluated with: the models' own states to the recording's float16 rounding, mid-run
    (BatchNorm's running statistics included) and at the end, in the same plane."""
    finished = request.getfixturevalue(which)
    trainer = Trainer(finished.data, finished.model_fn, finished.config)
    for stop in (1, trainer.config.epochs):
        while trainer.epoch < stop:
            trainer.run_epoch()
        models, seed = trainer.models(), trainer.config.seeds[0]
        live, exact = study_paths(trainer.recorder, None, seed), study_paths(trainer.recorder, models, seed)
        for run in (r for r in trainer.recorder.runs if r[1] == seed):
            path = trainer.recorder.path(run)
            end = (path.average if path.average is not None else path.live)[-1]
            want = paths.state_vector(models[run])
            assert (end - want).abs().max() <= 2e-3 * want.abs().max()
        for a, b in zip(live.points, exact.points):
            assert a["method"] == b["method"]
            assert (a["x"], a["y"]) == pytest.approx((b["x"], b["y"]), abs=2e-3 * max(1.0, abs(b["x"]), abs(b["y"])))


def test_a_live_study_refuses_a_method_whose_recording_is_not_its_evaluated_weights():
    """SWA's evaluated average takes in the epoch's end after the snapshot: its ends need the networks."""
    config = TrainConfig(methods=("sgd", "swa"), seeds=(0,), epochs=2, batch_size=16, lr=0.1, record_paths=True)
    trainer = Trainer(toy_data("moons", 200, 0.3), partial(mlp, 2, (8,), 2, "tanh"), config)
    trainer.run()
    assert "swa" not in paths.RECORDED_ENDS
    with pytest.raises(ValueError, match="evaluated weights of swa"):
        study_paths(trainer.recorder, None, 0)
    assert [p["method"] for p in study_paths(trainer.recorder, trainer.models(), 0).points] == ["sgd", "swa"]


def test_switch_jumps_start_at_the_epoch_end_of_their_own_switch_when_switches_are_rare():
    """With a switch every second epoch, each jump starts at θ of the epoch end it follows (same step),
    not at the previous epoch's end: in the study, the live spec and the matplotlib figure alike."""
    from sema_demo.charts.live_paths import live_paths_spec
    from sema_demo.charts.paths import paths_figure

    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0,), epochs=4, batch_size=32, lr=0.1,
                         ema_momentum=0.9, switch_epochs=2, record_paths=True)
    trainer = Trainer(toy_data("moons", 200, 0.3), partial(mlp, 2, (8,), 2, "tanh"), config)
    trainer.run()
    study = study_paths(trainer.recorder, trainer.models(), 0)
    path = trainer.recorder.path(("sema", 0))
    kinds = np.array(path.kinds)
    switches = np.flatnonzero(kinds == "switch")
    assert len(switches) == 2 and (kinds == "epoch").sum() == 4
    assert (path.steps[switches - 1] == path.steps[switches]).all()           # the θ just before each switch
    expected = (path.live[switches] - path.live[switches - 1]).norm(dim=1).numpy()
    np.testing.assert_allclose(study.switch_jumps, expected, rtol=1e-6)
    live = study.frame[(study.frame.method == "sema") & (study.frame.weights == "live")]
    spec = live_paths_spec(study)
    jumps = spec["datasets"]["jumps"]
    assert len(jumps) == 2
    span = spec["layer"][0]["encoding"]["x"]["scale"]["domain"]
    tol = 1e-3 * (span[1] - span[0])
    for jump, step in zip(jumps, path.steps[switches]):
        before = live[(live.step == step) & (live.kind == "epoch")].iloc[0]
        assert (jump["x"], jump["y"]) == pytest.approx((before.x, before.y), abs=tol)
    figure = paths_figure(study)
    dashed = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 2
    for line, step in zip(dashed, path.steps[switches]):
        before = live[(live.step == step) & (live.kind == "epoch")].iloc[0]
        assert (line.get_xdata()[0], line.get_ydata()[0]) == pytest.approx((before.x, before.y), abs=1e-9)


def test_a_study_without_its_measures_draws_the_same_coordinates(toy):
    """The live picture skips the faithfulness passes (in-plane share, residual, length): same frame."""
    full = study_paths(toy.recorder, None, 0, measure=True)
    quick = study_paths(toy.recorder, None, 0, measure=False)
    assert full.in_plane and full.length and not quick.in_plane and not quick.residual and not quick.length
    np.testing.assert_array_equal(full.frame[["x", "y"]].to_numpy(), quick.frame[["x", "y"]].to_numpy())
    assert full.frame.drop(columns=["x", "y"]).equals(quick.frame.drop(columns=["x", "y"]))
    assert full.points == quick.points
