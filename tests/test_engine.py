"""The engine backends (sema_demo.engine): an embedded Dask cluster and an external scheduler give the
in-process numbers; a killed worker ends the run cleanly; the job queue stays on top, fair."""
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from streamlit.testing.v1 import AppTest

from sema_demo import engine
from sema_demo.datasets.toy import toy_data
from sema_demo.jobs import JobQueue
from sema_demo.models import mlp
from sema_demo.training import Trainer, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(120)


def toy_run(epochs=3, size=300):
    data = toy_data("moons", size, 0.3, 0.2)
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1), epochs=epochs, batch_size=16, lr=0.3,
                         ema_momentum=0.9, grid_resolution=12, record_paths=True)
    return data, partial(mlp, 2, (16, 16), data.n_classes, "relu"), config


def numbers(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_same_run(remote, local):
    """Every reported number, grid, network and recorded path of the mirror equals the in-process run's."""
    assert remote.epoch == local.epoch and remote.done == local.done
    assert numbers(remote.history) == numbers(local.history)
    assert remote.frame().drop(columns="seconds").equals(local.frame().drop(columns="seconds"))
    assert remote.grids.keys() == local.grids.keys()
    assert all(np.array_equal(remote.grids[r], local.grids[r]) for r in local.grids)
    remote_models, local_models = remote.models(), local.models()
    for r, model in local_models.items():
        for a, b in zip(remote_models[r].state_dict().values(), model.state_dict().values()):
            assert torch.equal(a, b.cpu())
    assert remote.recorder.steps == local.recorder.steps and remote.recorder.kinds == local.recorder.kinds
    assert torch.equal(remote.recorder.path(("sema", 1)).live, local.recorder.path(("sema", 1)).live)
    assert (remote.steps_per_epoch, remote.batch_size, remote.extent) == (local.steps_per_epoch, local.batch_size,
                                                                        local.extent)


def actors_on_workers(dask_client) -> int:
    return sum(dask_client.run(lambda dask_worker: len(dask_worker.state.actors)).values())


@pytest.fixture(scope="module")
def embedded():
    """SEMA_ENGINE=dask with no scheduler: the embedded LocalCluster (one worker process)."""
    saved = {k: os.environ.get(k) for k in ("SEMA_ENGINE", "SEMA_WORKERS", "SEMA_SCHEDULER")}
    os.environ.update(SEMA_ENGINE="dask", SEMA_WORKERS="1")
    os.environ.pop("SEMA_SCHEDULER", None)
    yield engine.client()
    engine.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_the_embedded_cluster_trains_the_same_numbers_as_in_process(embedded):
    remote, local = engine.new_trainer(*toy_run()), Trainer(*toy_run())
    assert isinstance(remote, engine.RemoteTrainer)
    assert_same_run(remote, local)                  # epoch 0: the same starting grids and networks
    for _ in range(2):                              # paths synced incrementally, mid-run
        assert numbers(remote.run_epoch()) == numbers(local.run_epoch())
        assert_same_run(remote, local)
    remote.stop(), local.stop()
    assert remote.done and remote.run_epoch() == []
    # A dropped run (changed control, Reset, closed tab) frees the worker's copy of it.
    assert actors_on_workers(embedded) == 1
    del remote
    gc.collect()
    deadline = time.monotonic() + 10
    while actors_on_workers(embedded) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert actors_on_workers(embedded) == 0


def test_a_ticks_figures_computed_by_the_worker_equal_the_in_process_ones(embedded):
    """``trainer.apply``: the curves, table, sentences, grids and live paths a tick draws come back
    from the worker equal to the ones a Trainer in this process computes (the mirror reads nothing)."""
    from sema_demo.charts.live import TickView, live_paths_picture, tick_figures

    remote, local = engine.new_trainer(*toy_run()), Trainer(*toy_run())
    view = TickView(threshold=0.8, question="accuracy", alpha=0.9, epochs=3, switch_steps=15, chance=0.5,
                    grids_seed=1)
    for _ in range(2):
        remote.run_epoch(), local.run_epoch()
        mine, theirs = remote.apply(tick_figures, view), local.apply(tick_figures, view)
        assert mine.epoch == theirs.epoch == local.epoch
        assert mine.curves == theirs.curves and mine.notice == theirs.notice and mine.text == theirs.text
        assert mine.table.equals(theirs.table)
        assert mine.grids.keys() == {"sgd", "ema", "sema"} and all(
            np.array_equal(mine.grids[m], local.grids[(m, 1)]) for m in mine.grids)
        assert remote.apply(live_paths_picture, 1, "pca", 300) == local.apply(live_paths_picture, 1, "pca", 300)
    assert "grids" not in remote._cache and "recorder" not in remote._cache     # nothing copied to the server


@pytest.mark.skipif(not hasattr(os, "nice"), reason="process priorities are POSIX")
def test_the_embedded_workers_yield_the_cpu_to_the_servers_page_runs(embedded):
    """Their niceness is the server's + SEMA_WORKER_NICE (default 10): a page run goes first."""
    server = os.nice(0)
    assert set(embedded.run(os.nice, 0).values()) == {min(19, server + engine.worker_niceness())}
    assert engine.worker_niceness() == 10
    # a session of their own: with autogroup scheduling the kernel shares the CPU between sessions
    # before it looks at nice values, so the workers' session group is lowered as well
    assert os.getsid(0) not in set(embedded.run(os.getsid, 0).values())
    group = Path("/proc/self/autogroup")
    # Linux with autogroup; elsewhere the nice value above is all there is.  The file is empty for
    # a process in a cgroup of its own (a container, a systemd service): autogroup does not apply
    server_autogroup = group.read_text().split() if group.exists() else []
    if server_autogroup:
        server_group = server_autogroup[0]
        for text in embedded.run(group.read_text).values():
            name, _, nice = text.split()
            assert name != server_group and int(nice) == engine.worker_niceness()


def test_the_queue_stays_fair_on_top_of_the_engine(embedded):
    """The slot is taken in the server before the worker is asked: arrival order, one job at a time."""
    queue, trainers = JobQueue(slots=1), [engine.new_trainer(*toy_run(epochs=2)) for _ in range(3)]
    order, running, peak = [], [0], [0]
    holder_in, release = threading.Event(), threading.Event()

    def holder():
        with queue.slot():
            holder_in.set()
            release.wait(10)

    def student(i):
        with queue.slot():
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            trainers[i].run_epoch()
            order.append(i)
            running[0] -= 1

    first = threading.Thread(target=holder)
    first.start()
    holder_in.wait(10)
    students = []
    for i in range(3):
        students.append(threading.Thread(target=student, args=(i,)))
        students[-1].start()
        while queue.waiting < i + 1:
            time.sleep(0.01)
    release.set()
    for t in [first, *students]:
        t.join(30)
    assert order == [0, 1, 2] and peak[0] == 1
    assert [t.epoch for t in trainers] == [1, 1, 1]


@pytest.mark.parametrize("page, key, query", [
    ("toy_datasets", "toy", dict(size="200", epochs="5", seeds="2", width="8", batch="32")),
])
def test_the_training_pages_run_to_the_end_on_the_dask_engine(embedded, page, key, query):
    """The toy page draws from the mirror as from a Trainer: boundaries, curves, paths, results.
    (The image page reads nothing more; checked by hand with dataset=digits, not in CI for time.)"""
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{page}.py"), default_timeout=120)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    for _ in range(12):
        if at.session_state[f"{key}::live"].trainer.done:
            break
        at.run()
    trainer = at.session_state[f"{key}::live"].trainer
    assert isinstance(trainer, engine.RemoteTrainer) and trainer.done and not trainer.stopped
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe) >= 1                   # the results table, drawn from the mirrored history
    assert trainer.recorder is not None and trainer.models()


def _live_page():
    from functools import partial

    import streamlit as st

    from sema_demo.datasets.toy import toy_data
    from sema_demo.models import mlp
    from sema_demo.training import TrainConfig
    from sema_demo.ui.training import live_training

    data = toy_data("moons", 3000, 0.3, 0.2)

    def build():
        return data, partial(mlp, 2, (32, 32), 2, "relu"), TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1),
                                                                       epochs=8, batch_size=2)

    live_training("t", build, lambda trainer: st.write(f"{len(trainer.history)} rows"), settings=("x",), frames=8)


def test_a_worker_killed_mid_epoch_ends_the_run_cleanly_and_replay_restarts(embedded):
    at = AppTest.from_function(_live_page, default_timeout=90)
    at.run()
    live = at.session_state["t::live"]
    assert isinstance(live.trainer, engine.RemoteTrainer) and live.trainer.epoch >= 1

    pid = next(iter(embedded.run(os.getpid).values()))

    def kill_while_it_trains():                    # SIGKILL while an epoch is being computed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(embedded.run(lambda dask_worker: len(dask_worker.active_threads)).values()):
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_while_it_trains)
    killer.start()
    for _ in range(4):                              # the next tick(s): the kill lands inside one
        at.run()
        if at.session_state["t::live"].lost:
            break
    killer.join(10)
    live = at.session_state["t::live"]
    assert live.lost is not None
    errors = " ".join(e.value for e in at.error)
    assert "The training worker stopped" in errors and "Press ↻ Replay to restart it from epoch 0" in errors
    assert not at.exception
    trainer = live.trainer
    assert trainer.done and not live.playing
    # No half-reported epoch: every reported epoch has all six runs' rows, the last one included.
    assert len(trainer.history) == 6 * trainer.epoch and {r["epoch"] for r in trainer.history} == set(
        range(1, trainer.epoch + 1))
    assert at.button(key="t::play").label == "↻ Replay"
    # A page's figures still draw from the mirror: its numbers, with no arrays it never fetched.
    from sema_demo.charts.live import TickView, tick_figures
    figures = trainer.apply(tick_figures, TickView(threshold=0.9, question="accuracy", alpha=0.9, epochs=8,
                                                  switch_steps=None, grids_seed=0))
    assert figures.epoch == trainer.epoch and figures.grids == {} and len(figures.table) == 3

    at.button(key="t::play").click().run()          # a fresh run on the restarted worker
    fresh = at.session_state["t::live"]
    assert fresh.lost is None and fresh.trainer is not trainer and fresh.trainer.epoch >= 1
    assert not at.exception and not [e for e in at.error if "worker" in e.value]


def _figures_page():
    from functools import partial

    import streamlit as st

    from sema_demo.charts.live import TickView, tick_figures
    from sema_demo.datasets.toy import toy_data
    from sema_demo.models import mlp
    from sema_demo.training import TrainConfig
    from sema_demo.ui.training import live_training

    data = toy_data("moons", 400, 0.3, 0.2)

    def build():
        return data, partial(mlp, 2, (8,), 2, "relu"), TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0,),
                                                                   epochs=40, batch_size=16, grid_resolution=10)

    def draw(trainer):
        figures = trainer.apply(tick_figures, TickView(threshold=0.9, question="accuracy", alpha=0.9, epochs=40,
                                                       switch_steps=None, grids_seed=0))
        st.dataframe(figures.table)
        st.write(f"grids of {len(figures.grids)} methods")

    live_training("f", build, draw, settings=("x",), frames=40)


def test_a_worker_gone_before_a_ticks_figures_ends_the_run_with_a_message_and_the_numbers_still_draw(embedded):
    """The worker dies between two ticks: the next tick's figures (``trainer.apply``) find it gone,
    the run ends at its last epoch with the page's message, and the mirror's numbers still draw."""
    at = AppTest.from_function(_figures_page, default_timeout=90)
    at.run()
    live = at.session_state["f::live"]
    assert isinstance(live.trainer, engine.RemoteTrainer) and live.trainer.epoch >= 1 and not at.exception
    assert at.markdown[-1].value == "grids of 3 methods"
    epoch = live.trainer.epoch
    os.kill(next(iter(embedded.run(os.getpid).values())), signal.SIGKILL)     # idle: no epoch in flight
    at.run()
    live = at.session_state["f::live"]
    assert live.lost is not None and not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "The training worker stopped" in errors and "Press ↻ Replay" in errors
    assert live.trainer.epoch == epoch and len(live.trainer.history) == 3 * epoch     # nothing half-reported
    assert len(at.dataframe) == 1 and at.markdown[-1].value == "grids of 0 methods"  # drawn from the mirror
    assert at.button(key="f::play").label == "↻ Replay"


def small_map(epochs=3):
    from sema_demo.maps import measured_map

    data = toy_data("moons", 200, 0.3, 0.2)
    base = TrainConfig(methods=("sgd", "ema", "sema"), epochs=epochs, batch_size=20, lr=0.3)
    return measured_map, (data, partial(mlp, 2, (8,), 2), base, (0.8, 0.9), (1,), (0, 1), 0.9)


def test_an_offloaded_computation_gives_the_inline_result_and_its_progress_in_order(embedded, monkeypatch):
    fn, args = small_map()
    seen = []
    remote = engine.offload(fn, *args, progress=seen.append)
    monkeypatch.setenv("SEMA_ENGINE", "inline")
    here = []
    local = engine.offload(fn, *args, progress=here.append)
    assert seen == here == [1 / 3, 2 / 3, 1.0]                      # replayed here, in order, none lost
    assert remote.runs.equals(local.runs) and remote.cells == local.cells


def test_an_offloaded_error_is_raised_as_itself(embedded):
    with pytest.raises(ValueError, match="at least 2 seeds"):
        engine.offload(small_map()[0], *small_map()[1][:5], (0,), 0.9)


def test_a_worker_killed_under_an_offloaded_task_is_replaced_and_the_task_runs_again(embedded):
    fn, args = small_map(epochs=40)
    pid = next(iter(embedded.run(os.getpid).values()))
    killed = threading.Event()

    def kill_while_it_computes():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(embedded.run(lambda dask_worker: len(dask_worker.active_threads)).values()):
                os.kill(pid, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_while_it_computes)
    killer.start()
    progress = []
    result = engine.offload(fn, *args, progress=progress.append)   # no hang: the nanny's new worker runs it
    killer.join(10)
    assert killed.is_set()
    assert progress[-1] == 1.0 and len(result.runs) == 2 * (1 + 2 + 2)   # per seed: SGD, EMA and SEMA at 2 α
    assert next(iter(embedded.run(os.getpid).values())) != pid


def test_the_landscape_page_trains_and_measures_on_the_workers_with_the_same_numbers(embedded, monkeypatch):
    """The landscape page's quick run and its sharpness measurements are offloaded, and the page shows
    the same numbers as in-process."""
    calls = []
    real = engine.offload
    monkeypatch.setattr(engine, "offload", lambda fn, *a, **k: calls.append(fn.__name__) or real(fn, *a, **k))

    def page_text() -> list[str]:
        at = AppTest.from_file(str(ROOT / "app_pages" / "landscape.py"), default_timeout=120)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return [m.value for m in at.markdown] + [str(m.value) for m in at.metric]

    on_workers = page_text()
    assert {"train_to_end", "compare_methods"} <= set(calls)
    monkeypatch.setenv("SEMA_ENGINE", "inline")
    assert page_text() == on_workers


def test_an_offloaded_computation_that_cannot_finish_is_a_message_on_the_page(monkeypatch):

    def lost(*args, **kwargs):
        raise engine.WorkerLost("the worker process computing it ended or cannot be reached")

    monkeypatch.setattr(engine, "offload", lost)
    at = AppTest.from_file(str(ROOT / "app_pages" / "landscape.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert any("The worker process computing these training stopped" in e.value for e in at.error)


def test_a_bad_engine_setting_is_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv("SEMA_ENGINE", "ray")
    with pytest.raises(engine.EngineError, match="SEMA_ENGINE must be one of inline, dask, got 'ray'"):
        engine.new_trainer(*toy_run())
    at = AppTest.from_function(_live_page, default_timeout=30)
    at.run()
    assert "the training engine is not available: SEMA_ENGINE must be one of inline, dask" in at.error[0].value
    assert not at.exception


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(engine, "CONNECT_SECONDS", 1)
    monkeypatch.setenv("SEMA_SCHEDULER", f"tcp://127.0.0.1:{free_port()}")
    monkeypatch.delenv("SEMA_ENGINE", raising=False)
    assert engine.engine_mode() == "dask"
    with pytest.raises(engine.EngineError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:"):
        engine.new_trainer(*toy_run())
    engine.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_external_scheduler_and_worker_train_the_same_numbers(monkeypatch):
    """`dask scheduler` and `dask worker` as processes on 127.0.0.1, as a course on several machines runs them."""
    engine.shutdown()                               # leave the embedded cluster of the tests above
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    dask_cli = [sys.executable, "-m", "dask"]      # the `dask` command of this Python
    scheduler = subprocess.Popen([*dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([*dask_cli, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1", "--nthreads", "1",
                               "--no-dashboard", "--host", "127.0.0.1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        monkeypatch.setenv("SEMA_SCHEDULER", f"tcp://127.0.0.1:{port}")
        monkeypatch.delenv("SEMA_ENGINE", raising=False)
        deadline = time.monotonic() + 60
        while True:                                 # the scheduler needs a moment to listen
            try:
                dask_client = engine.client()
                break
            except engine.EngineError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        dask_client.wait_for_workers(1, timeout=60)
        assert engine.slots() == 2                  # one worker thread, plus the server's drawing
        remote, local = engine.new_trainer(*toy_run()), Trainer(*toy_run())
        assert isinstance(remote, engine.RemoteTrainer)
        while not local.done:
            remote.run_epoch(), local.run_epoch()
        assert_same_run(remote, local)
    finally:
        engine.shutdown()
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
