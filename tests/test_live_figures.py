"""A live tick's figures (sema_demo.charts.live): the same numbers as the pieces they are built
from, their Vega-Lite datasets as Arrow IPC that decodes to the very rows, and a mirror whose worker
ended still answering from what it holds."""
from functools import partial

import pandas as pd
import pyarrow as pa

from sema_demo.charts import summaries
from sema_demo.charts.live import TickView, arrow_datasets, paths_picture, recording_note, tick_figures
from sema_demo.charts.live_paths import live_paths_spec
from sema_demo.charts.training import learning_curves_spec, results_table, results_text
from sema_demo.datasets.toy import toy_data
from sema_demo.models import mlp
from sema_demo.paths import study_paths
from sema_demo.training import Trainer, TrainConfig


def trained(epochs=2, record=True):
    data = toy_data("moons", 200, 0.3, 0.2)
    config = TrainConfig(methods=("sgd", "ema", "sema"), seeds=(0, 1), epochs=4, batch_size=20, lr=0.3,
                         ema_momentum=0.9, grid_resolution=10, record_paths=record)
    trainer = Trainer(data, partial(mlp, 2, (8,), 2, "relu"), config)
    for _ in range(epochs):
        trainer.run_epoch()
    return trainer


def rows(ipc: bytes) -> list[dict]:
    return pa.ipc.open_stream(ipc).read_all().to_pylist()


def test_the_figures_are_the_pieces_a_page_drew_before():
    trainer = trained()
    frame = trainer.frame()
    view = TickView(threshold=0.8, question="speed", alpha=0.9, epochs=4, switch_steps=8, chance=0.5, seed=1,
                    grids_seed=0, curve_titles={"loss": "Loss of the evaluated weights"})
    figures = tick_figures(trainer, view)
    assert figures.epoch == 2
    assert figures.table.equals(results_table(frame, 0.8))
    assert figures.text == results_text(frame, 0.8, "speed", 0.5)
    assert figures.notice == summaries.notice_text(frame, "speed", 0.8, alpha=0.9, switch_steps=8, chance=0.5,
                                                   so_far=True)
    for kind, title in (("accuracy", "Accuracy, seed 1"), ("loss", "Loss of the evaluated weights, seed 1")):
        plain = learning_curves_spec(frame[frame.seed == 1], kind, switch_epochs=trainer.switch_epochs(), epochs=4,
                                     title=title)
        spec = figures.curves[kind]
        assert {k: v for k, v in spec.items() if k != "datasets"} == {k: v for k, v in plain.items() if k != "datasets"}
        expected = plain["datasets"]["curves"].to_dict("records")
        assert rows(spec["datasets"]["curves"]) == expected
    assert set(figures.grids) == {"sgd", "ema", "sema"} and all(
        (figures.grids[m] == trainer.grids[(m, 0)]).all() for m in figures.grids)
    paused = tick_figures(trainer, TickView(threshold=0.8, question="accuracy", alpha=0.9, epochs=4,
                                            switch_steps=8, table=False))
    assert paused.table is None and paused.text is None and paused.grids == {}


def test_arrow_datasets_decode_to_the_same_rows_and_leave_empty_ones_as_they_are():
    records = [{"x": 0.5, "y": -1.0, "method": "SEMA", "step": 3}, {"x": 1.5, "y": 2.0, "method": "EMA", "step": 4}]
    frame = pd.DataFrame({"a": [1, 2], "b": ["u", "v"]})
    spec = arrow_datasets({"datasets": {"r": records, "f": frame, "none": [], "nothing": frame.iloc[:0]}, "mark": "x"})
    assert rows(spec["datasets"]["r"]) == records and rows(spec["datasets"]["f"]) == frame.to_dict("records")
    assert spec["datasets"]["none"] == [] and spec["datasets"]["nothing"].empty and spec["mark"] == "x"


def test_the_live_paths_picture_is_the_live_spec_and_says_when_nothing_is_recorded():
    trainer = trained()
    spec = paths_picture(trainer.recorder, trainer.models, 0, "solutions", 300)
    plain = live_paths_spec(study_paths(trainer.recorder, None, 0, "solutions", measure=False), size=300)
    assert {k: v for k, v in spec.items() if k != "datasets"} == {k: v for k, v in plain.items() if k != "datasets"}
    for name, values in plain["datasets"].items():
        assert (rows(spec["datasets"][name]) if values else spec["datasets"][name]) == values
    assert paths_picture(trained(epochs=0).recorder, trainer.models, 0, "solutions", 300) is None   # no epoch yet
    assert paths_picture(None, trainer.models, 0, "solutions", 300) == recording_note(None)
    assert "did not record its weight paths" in recording_note(None) and recording_note(trainer.recorder) is None
