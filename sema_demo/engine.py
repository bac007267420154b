"""Where heavy work runs: in this process ("inline") or in Dask worker processes ("dask").

    trainer = new_trainer(data, model_fn, config)   # a Trainer, or a RemoteTrainer in "dask" mode
    while not trainer.done:
        trainer.run_epoch()                         # same calls, same numbers, either way
    rows = offload(compare_methods, models, x, y, settings, progress=bar)   # one measurement, either way

Every Streamlit session is a thread of one server process, so in a classroom the
students' trainings would compete for one GIL with every page redraw.  In "dask" mode a
live run's ``Trainer`` lives in a worker process (a Dask actor); the server keeps a
``RemoteTrainer``, a light mirror that each ``run_epoch()`` updates with the new rows
only, and that fetches the arrays a page draws (grids, networks, recorded paths) once
per epoch, when a page reads them.  What a live page redraws on every tick (curves, table,
sentences, live paths: ``charts.live``) is computed by the worker through ``trainer.apply``,
and only the finished figures come back.  Every other computation that takes seconds (a
landscape or a surface measured, its picture rendered, a map trained) goes through
:func:`offload`: a Dask task on a worker, its progress sent back and shown here.  Light
computations cached per setting (Theory's curves, the playground's simulations) stay here.  The job queue (``sema_demo.jobs``) stays on top:
the server takes a slot *before* it asks a worker for an epoch, so the queue's order,
visible positions and interruptions are the same in both modes.

Settings (environment variables, read when the first trainer is made):

- ``SEMA_ENGINE``: ``inline`` (default) or ``dask``;
- ``SEMA_SCHEDULER=tcp://host:8786``: use that Dask scheduler (implies ``dask``; its
  workers need this package installed) instead of the embedded cluster;
- ``SEMA_WORKERS``: worker processes of the embedded cluster (default: cores − 1, one
  core left to the server's page renders), one thread each;
- ``SEMA_WORKER_NICE``: how much lower their CPU priority is than the server's (default 10, 0:
  the same), so that a page run never waits behind an epoch on a busy machine.

"inline" is the default because one user's first run then starts at once, with no worker
process to start (``benchmarks/bench_engine.py``); a classroom server sets
``SEMA_ENGINE=dask`` (docs/ARCHITECTURE.md, "Where heavy work runs").
"""
from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .jobs import default_slots
from .training import Data, Trainer, TrainConfig

__all__ = ["ENGINES", "EngineError", "WorkerLost", "RemoteTrainer", "engine_mode", "new_trainer", "offload",
           "slots", "client", "shutdown"]

ENGINES = ("inline", "dask")
CONNECT_SECONDS = 10          # a scheduler or a worker that does not answer within this is gone
WORKER_NICE = 10              # the embedded workers' niceness (worker_niceness)
START_SECONDS = 120           # a run that no worker takes within this cannot start (no worker left)


class EngineError(RuntimeError):
    """The configured engine cannot be used (bad setting, Dask missing, scheduler unreachable)."""


class WorkerLost(RuntimeError):
    """The worker process holding a run stopped (it was killed, ran out of memory, or cannot be
    reached); the run is gone and must start again."""

    def __init__(self, detail: str = ""):
        super().__init__("The training worker stopped" + (f" ({detail})" if detail else "")
                         + ": this run ends at its last complete epoch.")


def engine_mode() -> str:
    """``$SEMA_ENGINE`` if set, "dask" when ``$SEMA_SCHEDULER`` is set, else "inline"."""
    configured = os.environ.get("SEMA_ENGINE", "").strip().lower()
    if configured and configured not in ENGINES:
        raise EngineError(f"SEMA_ENGINE must be one of {', '.join(ENGINES)}, got {configured!r}")
    return configured or ("dask" if os.environ.get("SEMA_SCHEDULER", "").strip() else "inline")


def new_trainer(data: Data, model_fn: Callable, config: TrainConfig) -> Trainer | RemoteTrainer:
    """A trainer where the configured engine runs heavy work (ValueError for bad settings, as ``Trainer``)."""
    if engine_mode() == "inline":
        return Trainer(data, model_fn, config)
    return RemoteTrainer(client(), data, model_fn, config)


def slots() -> int:
    """How many heavy jobs may run at once: ``$SEMA_MAX_JOBS``, else cores − 1 inline, else the
    cluster's worker threads plus one: while one student's epoch trains on a worker, the next
    student's frame is drawn in the server (a tick holds its slot for both)."""
    configured = os.environ.get("SEMA_MAX_JOBS", "")
    if engine_mode() == "inline" or (configured.isdigit() and int(configured) >= 1):
        return default_slots()
    workers = client().scheduler_info(n_workers=-1)["workers"].values()
    return sum(w["nthreads"] for w in workers) + 1


# ------------------------------------------------------------------- one heavy computation, anywhere

PROGRESS_POLL = 0.1           # seconds between two looks at an offloaded task's progress messages


def offload(fn: Callable, *args, progress: Callable | None = None, **kwargs):
    """``fn(*args, **kwargs)`` where heavy work runs, and its result: here ("inline") or as a
    task on a Dask worker ("dask").

    ``progress``, if given, is passed to ``fn`` as its ``progress=`` keyword.  On a worker its
    calls are sent back through a Dask queue and made here, in order, while the task runs (a
    page's progress bar is then drawn by the page's own thread).  An error of ``fn`` is raised
    here as itself; a worker that dies under the task is replaced by the scheduler, which runs
    the task again (up to ``distributed.scheduler.allowed-failures`` times), and past that
    :class:`WorkerLost` is raised.  ``fn`` and the arguments must pickle (module-level
    functions, tensors, networks, dataclasses).
    """
    if engine_mode() == "inline":
        return fn(*args, **kwargs) if progress is None else fn(*args, progress=progress, **kwargs)
    dask_client = client()
    queue = None
    if progress is not None:
        from distributed import Queue
        queue = Queue(f"sema-progress-{uuid.uuid4().hex}", client=dask_client)
    # Pickled here, and the result on the worker: Dask's own serializer for torch modules rebuilds
    # them without their hook dicts (register_forward_hook then fails); plain pickle keeps them whole.
    call = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    future = dask_client.submit(_run_offloaded, call, queue.name if queue else None, pure=False)

    def replay() -> None:
        if queue is not None and queue.qsize():
            for call in queue.get(batch=True):
                progress(*call)

    try:
        while True:
            try:
                result = future.result(timeout=PROGRESS_POLL if queue is not None else None)
            except TimeoutError:
                replay()
                continue
            replay()
            return pickle.loads(result)
    except Exception as err:
        if isinstance(err, OSError) or type(err).__name__ in ("KilledWorker", "CancelledError",
                                                              "FutureCancelledError", "CommClosedError"):
            raise WorkerLost("the worker process computing it ended or cannot be reached") from err
        raise
    finally:
        future.release()


def train_to_end(data: Data, model_fn: Callable, config: TrainConfig) -> tuple[dict, Any]:
    """A whole run trained (for :func:`offload`): its evaluated networks and its recorded paths."""
    trainer = Trainer(data, model_fn, config)
    trainer.run()
    return trainer.models(), trainer.recorder


def _run_offloaded(call: bytes, queue_name: str | None) -> bytes:
    """On the worker: run the pickled ``(fn, args, kwargs)``, its progress calls put on the queue
    ``queue_name``; the result comes back pickled."""
    fn, args, kwargs = pickle.loads(call)
    if queue_name is not None:
        from distributed import Queue
        queue = Queue(queue_name)
        kwargs = {**kwargs, "progress": lambda *step: queue.put(list(step))}
    return pickle.dumps(fn(*args, **kwargs), protocol=pickle.HIGHEST_PROTOCOL)


# ------------------------------------------------------------------------------- the Dask client

_lock = threading.Lock()
_state: dict[str, Any] = {}   # "client", "cluster", "workers", "address": one set per server process


def client():
    """The process's Dask client, made on first use: to ``$SEMA_SCHEDULER``, else to the embedded
    cluster (:func:`_embedded`)."""
    address = os.environ.get("SEMA_SCHEDULER", "").strip() or None
    with _lock:
        if _state.get("client") is not None and _state.get("address") == address:
            return _state["client"]
        _close()
        try:
            import dask
            from distributed import Client
        except ImportError as err:
            raise EngineError("SEMA_ENGINE=dask needs Dask distributed: pip install 'sema-demo[classroom]'") from err
        # A worker that vanished refuses connections: give up after seconds, not Dask's default 30 s.
        dask.config.set({"distributed.comm.timeouts.connect": f"{CONNECT_SECONDS}s"})
        try:
            if address is None:
                _state.update(_embedded())
                target = _state["cluster"]
            else:
                target = address
            made = Client(target, timeout=f"{CONNECT_SECONDS}s", set_as_default=True, direct_to_workers=True)
            if address is None:
                made.wait_for_workers(1, timeout=START_SECONDS)
        except (OSError, TimeoutError) as err:
            _close()
            raise EngineError(f"cannot reach the Dask scheduler at {address or 'the embedded cluster'}: {err}") from err
        _state.update(client=made, address=address)
        return made


def _embedded() -> dict:
    """A ``LocalCluster`` whose scheduler runs in this process and whose workers are ``dask worker``
    processes (``$SEMA_WORKERS`` of them, one thread each, restarted by their nanny if they die).

    Not ``LocalCluster(processes=True)``: it starts workers with multiprocessing, which re-runs
    ``sys.modules["__main__"]`` in every new process, and during a Streamlit script run that is the
    page script.  ``dask worker`` processes start from the dask command instead.  They find this
    package on ``PYTHONPATH`` and exit by themselves 30 s after the scheduler is gone."""
    from distributed import LocalCluster

    configured = os.environ.get("SEMA_WORKERS", "")
    workers = int(configured) if configured.isdigit() and int(configured) >= 1 else default_slots()
    cluster = LocalCluster(n_workers=0, host="127.0.0.1", scheduler_port=0, dashboard_address=None)
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    niceness = worker_niceness() if hasattr(os, "nice") else 0
    # `python -m dask worker …`, lowered in priority first (POSIX; its nanny and workers inherit it),
    # in a session of its own whose scheduling group is lowered too (see `_LOWER_PRIORITY`)
    start = [sys.executable, "-m", "dask"] if niceness == 0 else \
        [sys.executable, "-c", _LOWER_PRIORITY.format(niceness=niceness)]
    process = subprocess.Popen([*start, "worker", cluster.scheduler_address,
                                "--nworkers", str(workers), "--nthreads", "1", "--host", "127.0.0.1",
                                "--no-dashboard", "--death-timeout", "30", "--name", "sema"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=niceness > 0)
    atexit.register(_stop_process, process)
    return dict(cluster=cluster, workers=process)


# The workers' launcher.  On Linux with autogroup scheduling (the desktop default, and this
# machine's), the kernel shares the CPU between sessions first and applies a process's nice value
# only inside its own session: a nice-10 worker in the server's session still took a whole share
# from the browsers of the same machine (load_classroom.py: 0.6-0.8 of a core while new visitors
# loaded Home).  So the workers start a session of their own (`start_new_session`) and lower that
# session's group (`/proc/self/autogroup`); where there is no autogroup (disabled, or a process in
# a cgroup of its own such as a container, whose autogroup file reads empty), the nice value does it all.
_LOWER_PRIORITY = """\
import os, runpy
os.nice({niceness})
try:
    with open("/proc/self/autogroup", "w") as group:
        group.write("{niceness}")
except OSError:
    pass
runpy.run_module("dask", run_name="__main__")
"""


def worker_niceness() -> int:
    """How much lower the embedded workers' CPU priority is than the server's: ``$SEMA_WORKER_NICE``
    (0–19, default 10).  A page run is short and a student waits for it; an epoch is long and
    paced: on a busy machine the server's page runs go first and training takes every core left."""
    configured = os.environ.get("SEMA_WORKER_NICE", "")
    return min(19, int(configured)) if configured.isdigit() else WORKER_NICE


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def shutdown() -> None:
    """Close the client, and the embedded cluster with its worker processes if this process started one."""
    with _lock:
        _close()


def _close() -> None:
    made, cluster, workers = (_state.pop(k, None) for k in ("client", "cluster", "workers"))
    _state.pop("address", None)
    if made is not None:
        made.close()
    if workers is not None:
        _stop_process(workers)
    if cluster is not None:
        cluster.close()


# ------------------------------------------------------------------------ a trainer on a worker


class TrainerActor:
    """The worker side: one ``Trainer`` and the few calls the server makes on it."""

    def __init__(self, data: Data, model_fn: Callable, config: TrainConfig):
        self.trainer = Trainer(data, model_fn, config)

    def facts(self) -> dict:
        """What does not change during a run."""
        t = self.trainer
        return dict(device=str(t.device), batched=t.batched, batch_size=t.batch_size, batch_clamped=t.batch_clamped,
                    steps_per_epoch=t.steps_per_epoch, total_steps=t.total_steps, extent=t.extent, runs=t.runs)

    def run_epoch(self) -> dict:
        rows = self.trainer.run_epoch()
        return dict(rows=rows, epoch=self.trainer.epoch, diverged=dict(self.trainer.diverged))

    def stop(self) -> None:
        self.trainer.stop()

    def grids(self) -> dict:
        return self.trainer.grids

    def apply(self, fn: Callable, args: tuple, kwargs: dict):
        return fn(self.trainer, *args, **kwargs)

    def models(self) -> bytes:
        """Pickled whole: Dask's own torch serializer rebuilds a module with plain-dict hook tables,
        on which ``register_forward_hook`` fails."""
        return pickle.dumps(self.trainer.models(), protocol=pickle.HIGHEST_PROTOCOL)

    def recording(self, have: int):
        """The recorder whole (``have`` = 0), else the snapshots after the first ``have`` ones."""
        recorder = self.trainer.recorder
        if recorder is None or have == 0:
            return recorder
        new = recorder.snapshots[have:]       # row views of bigger chunks: packed, so each travels once
        return dict(step=recorder.step, steps=recorder.steps[have:], kinds=recorder.kinds[have:],
                    snapshots=torch.stack(new) if new else None,
                    patches={t: rows for t, rows in recorder.patches.items() if t >= have})


class RemoteTrainer:
    """The server's mirror of a ``Trainer`` living in a Dask worker: the same attributes and calls
    that pages read (``history``, ``epoch``, ``done``, ``diverged``, ``grids``, ``models()``,
    ``recorder``, ``frame()``, …).  ``run_epoch()`` brings back only that epoch's rows; the arrays
    are fetched when read, at most once per epoch.  If the worker dies, ``run_epoch()`` raises
    :class:`WorkerLost` (so does a fetch with nothing fetched before); the run then counts as
    stopped, the epochs fully reported before are kept and the arrays read last still draw."""

    # What Trainer computes from the mirrored fields alone: the very same code, not a copy.
    done = Trainer.done
    frame = Trainer.frame
    switch_epochs = Trainer.switch_epochs

    def __init__(self, dask_client, data: Data, model_fn: Callable, config: TrainConfig):
        data.check()                                    # bad data: a ValueError here, before any worker
        self.data, self.model_fn, self.config = data, model_fn, config
        self.x_train, self.y_train, self.x_test, self.y_test = data.x_train, data.y_train, data.x_test, data.y_test
        self.augment = data.augment
        self.epoch, self.stopped, self.lost = 0, False, None
        self.history: list[dict] = []
        self.diverged: dict[tuple[str, int], int] = {}
        self._cache: dict[str, tuple[int, Any]] = {}
        self._future = dask_client.submit(TrainerActor, data, model_fn, config, actor=True, pure=False)
        try:
            self._actor = self._future.result(timeout=START_SECONDS)
        except ValueError:                              # bad settings, found on the worker: as Trainer does
            self._release()
            raise
        except TimeoutError as err:
            self._release()
            raise EngineError(f"no Dask worker took this run within {START_SECONDS} s: are any workers "
                              "connected to the scheduler?") from err
        except Exception as err:
            if isinstance(err, OSError) or type(err).__name__ in ("KilledWorker", "CancelledError",
                                                                  "FutureCancelledError"):
                self._lose(err)                         # the worker died while building the run
            raise
        facts = self._call("facts")
        self.device = torch.device(facts.pop("device"))
        for name, value in facts.items():
            setattr(self, name, value)

    # ---- the calls that change the run
    def run_epoch(self) -> list[dict]:
        if self.done:
            return []
        result = self._call("run_epoch")                # all of the epoch, or nothing: never half
        self.epoch, self.diverged = result["epoch"], result["diverged"]
        self.history.extend(result["rows"])
        return result["rows"]

    def stop(self) -> None:
        self.stopped = True
        if self.lost is None:
            try:
                self._call("stop")
            except WorkerLost:                          # nothing left to stop
                pass

    def close(self) -> None:
        """Free the worker's copy of the run now (dropping the last reference does it too)."""
        self._release()

    def apply(self, fn: Callable, *args, **kwargs):
        """``fn(trainer, *args, **kwargs)`` computed by the worker on its ``Trainer`` (``fn`` must be
        importable there: a function of this package), one round trip; only the answer travels.
        Once the worker is gone, ``fn`` reads this mirror instead: the history it holds is complete
        up to the last reported epoch, and the arrays it fetched before still draw."""
        if self.lost is not None:
            return fn(self, *args, **kwargs)
        return self._call("apply", fn, args, kwargs)

    # ---- what pages draw, fetched once per epoch
    @property
    def grids(self) -> dict:
        return self._fetched("grids", lambda: self._call("grids"))

    def models(self) -> dict:
        return self._fetched("models", lambda: pickle.loads(self._call("models")))

    @property
    def recorder(self):
        return self._fetched("recorder", self._sync_recorder)

    def _sync_recorder(self):
        mirror = self._cache.get("recorder", (None, None))[1]
        if mirror is None:
            return self._call("recording", 0)
        new = self._call("recording", len(mirror.snapshots))
        mirror.step = new["step"]
        mirror.steps.extend(new["steps"])
        mirror.kinds.extend(new["kinds"])
        mirror.patches.update(new["patches"])
        if new["snapshots"] is not None:
            mirror.snapshots.extend(new["snapshots"].unbind(0))
        return mirror

    def _fetched(self, name: str, fetch: Callable[[], Any]):
        cached = self._cache.get(name)
        if cached is None or (cached[0] != self.epoch and self.lost is None):
            try:
                self._cache[name] = (self.epoch, fetch())
            except WorkerLost:
                if cached is None:
                    raise
        return self._cache[name][1]

    # ---- the one door to the worker
    def _call(self, method: str, *args):
        if self.lost is not None:
            raise WorkerLost(self.lost)
        try:
            return getattr(self._actor, method)(*args).result()
        except OSError as err:                          # the connection closed, or is refused
            self._lose(err)
        except RuntimeError as err:
            if "Actor was lost" not in str(err):        # a real error of the training code
                raise
            self._lose(err)

    def _lose(self, err: BaseException):
        self.lost = "its process ended or cannot be reached"
        self.stopped = True
        self._release()
        raise WorkerLost(self.lost) from err

    def _release(self) -> None:
        future, self._future, self._actor = getattr(self, "_future", None), None, None
        if future is not None:
            future.release()
