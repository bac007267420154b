"""One user on a laptop: does the Dask engine pay off, or is training in-process faster?

The default engine (``sema_demo.engine``) must be the one that measures best for a single
user with no set-up step.  This times the toy page's default live run (moons, 800 points,
MLP 2-32-32-2 ReLU, momentum SGD lr 0.3, batch 16, 3 methods x 3 seeds, decision grids of
60 x 60 and the weight paths read every epoch, as the page draws them) trained in this
process (with the torch threads the server gives one job) and through the embedded Dask
cluster (one worker process, one thread), alternately, after a warm-up.  The cluster's start-up, paid once per server process, is timed on its own.

    RATIO dask_over_inline_first_run  <(cluster start + dask run) / inline run>  target >= 1
    RATIO dask_over_inline_next_runs  <dask run / inline run>  (context: no target it must meet)

The first is what one user without set-up lives through: the first Play pays the cluster's
start-up.  inline is the right default when it PASSes.

Run: ``python benchmarks/bench_engine.py [--quick] [--check]``.
"""
from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import Report, alternate, header, median, parse_args  # noqa: E402

import torch  # noqa: E402

from sema_demo import engine  # noqa: E402
from sema_demo.jobs import default_slots  # noqa: E402
from sema_demo.datasets.toy import toy_data  # noqa: E402
from sema_demo.models import mlp  # noqa: E402
from sema_demo.training import Trainer, TrainConfig  # noqa: E402


def toy_default(epochs: int):
    data = toy_data("moons", 800, 0.3, 0.2)
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1, 2), epochs=epochs, batch_size=16,
                         optimizer="momentum", lr=0.3, ema_momentum=0.95, grid_resolution=60, record_paths=True)
    return data, partial(mlp, 2, (32, 32), data.n_classes, "relu"), config


def live_run(make, epochs: int) -> None:
    """Train to the end, reading what the page draws after every epoch."""
    trainer = make(*toy_default(epochs))
    while not trainer.done:
        trainer.run_epoch()
        _ = trainer.grids, trainer.recorder, trainer.models()


def main(argv=None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    # The torch threads the server gives one job (sema_demo/ui/jobs.py): the same as a worker's share.
    torch.set_num_threads(max(1, ((os.cpu_count() or 2) - 1) // default_slots()))
    header("engine: one user, in-process vs the embedded Dask cluster")
    epochs, repeats = (3, 1) if args.quick else (40, args.repeats or 3)
    os.environ.update(SEMA_ENGINE="dask", SEMA_WORKERS="1")
    os.environ.pop("SEMA_SCHEDULER", None)
    report = Report()
    start = time.perf_counter()
    engine.client()
    cluster_start = time.perf_counter() - start
    report.time("dask_cluster_start", cluster_start)
    try:
        times = alternate({"inline": lambda: live_run(Trainer, epochs),
                           "dask": lambda: live_run(engine.new_trainer, epochs)}, repeats=repeats)
    finally:
        engine.shutdown()
    for name, values in times.items():
        report.time(f"toy_default_run_{epochs}_epochs_{name}", values)
    inline, dask = median(times["inline"]), median(times["dask"])
    report.ratio("dask_over_inline_first_run", (cluster_start + dask) / inline, 1.0, ">=")
    print(f"# dask_over_inline_next_runs {dask / inline:.4g} (context: once the cluster is up)")
    report.finish(args.check)


if __name__ == "__main__":
    main()
