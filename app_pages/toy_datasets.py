"""Decision boundaries: SGD, EMA and SEMA learn a 2D data set side by side, live, over seeds."""
from functools import partial

import pandas as pd
import streamlit as st

from sema_demo.averaging import METHOD_LABELS, METHODS
from sema_demo.charts.boundaries import boundary_panels, boundary_view_data
from sema_demo.charts.training import diverged_notes
from sema_demo.datasets.toy import DATASET_NAMES, DATASETS, MAX_CSV_ROWS, CSVError, csv_data, points_frame, toy_data
from sema_demo.models import ACTIVATIONS, mlp
from sema_demo.training import TrainConfig
from sema_demo.ui.maps import measured_map_panel
from sema_demo.ui import display, results
from sema_demo.ui.boundary_view import boundary_view
from sema_demo.ui.common import (Param, alpha_slider, bind_url, csv_download, figure_downloads, horizon_warning,
                                 plain, preset_buttons, sync_url)
from sema_demo.ui.paths import paths_panel, paths_params, source_from_trainer
from sema_demo.ui.runs import TrainedRun, remember_run
from sema_demo.ui.training import is_playing, live_training, restart

KEY, GRID = "toy", 60                       # live-training slot; heatmap resolution
LRS = (0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 3.0, 10.0)
WIDTHS = (2, 4, 8, 16, 32, 64, 128)
OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam"}
ALPHAS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999)
PARAMS = {
    "dataset": Param("moons", choices=DATASETS + ("csv",)), "noise": Param(0.3, lo=0.0, hi=1.0),
    "size": Param(800, lo=50, hi=5000), "test": Param(20, lo=10, hi=50), "layers": Param(2, lo=1, hi=4),
    "width": Param(32, choices=WIDTHS), "activation": Param("relu", choices=tuple(ACTIVATIONS)),
    "optimizer": Param("momentum", choices=tuple(OPTIMIZERS)), "lr": Param(0.3, choices=LRS),
    "batch": Param(16, lo=1, hi=MAX_CSV_ROWS), "epochs": Param(40, lo=5, hi=300), "alpha": Param(0.95, choices=ALPHAS),
    "switch": Param(1, lo=1, hi=20), "seeds": Param(5, lo=1, hi=10),
    "methods": Param(["sgd", "ema", "sema"], choices=METHODS), "target": Param(95, lo=50, hi=100),
    **paths_params(), **results.SEED_PARAM,
}
PRESETS = {
    "High learning rate": dict(dataset="moons", noise=0.3, size=800, activation="relu", layers=2, width=32,
                               optimizer="momentum", lr=0.3, batch=16, epochs=40, alpha=0.95, switch=1, target=95),
    "Horizon too long": dict(dataset="moons", noise=0.3, size=1000, activation="tanh", layers=2, width=32,
                             optimizer="momentum", lr=0.05, batch=32, epochs=40, alpha=0.99, switch=1, target=95),
    "Spirals with Adam": dict(dataset="spirals", noise=0.1, size=1000, activation="tanh", layers=3, width=64,
                              optimizer="adam", lr=0.01, batch=32, epochs=60, alpha=0.9, switch=1, target=95),
}
PRESET_HELP = {
    "High learning rate": "Momentum SGD at lr 0.3 on a ReLU net: does averaging keep training stable?",
    "Horizon too long": "α = 0.99 remembers ≈ 100 steps but an epoch has only 25: does pulling θ back to that "
                        "average every epoch slow SEMA down?",
    "Spirals with Adam": "A harder shape and another optimizer: who reaches 95 % first?",
}
# The question each preset asks: the page's sentences answer it (summaries.QUESTIONS).
PRESET_QUESTIONS = {"High learning rate": "stability", "Horizon too long": "speed", "Spirals with Adam": "speed"}
bind_url(PARAMS)
s = st.session_state

st.title("🌗 Decision boundaries, live")
st.markdown("Copies of one small network start from **identical weights** and see the **same batches**; only "
            "the weight averaging differs: the plain optimizer (**SGD**), its moving average **EMA** φ, and "
            "**SEMA**, which copies φ back into the live weights θ at the end of every *k*-th epoch. Watch the "
            "boundaries form; every number below is a mean ± std over seeds, and every comparison is paired "
            "seed by seed.")

with st.sidebar:
    st.header("Data")
    st.selectbox("Data set", DATASETS + ("csv",), key="dataset", help="A 2D toy set, or your own CSV.",
                 format_func=lambda d: DATASET_NAMES.get(d, "Your CSV (x1, x2, label)"))
    upload = None
    if s.dataset == "csv":
        upload = st.file_uploader("CSV file", type=["csv"], key="csv_file",
                                  help=f"Columns x1, x2, label; up to {MAX_CSV_ROWS:,} rows and 10 classes. "
                                       "Both features are standardised.")
    else:
        st.slider("Noise", 0.0, 1.0, key="noise", step=0.05, help="How much the classes overlap (0 = clean).")
        st.slider("Points", 50, 5000, key="size", step=50, help="Size of the data set, train and test together.")
    st.slider("Test share (%)", 10, 50, key="test", step=5, help="Points held out to measure test accuracy.")
    st.header("Network")
    st.slider("Hidden layers", 1, 4, key="layers", help="How many hidden layers the MLP has.")
    st.select_slider("Width", WIDTHS, key="width", help="Neurons per hidden layer.")
    st.selectbox("Activation", tuple(ACTIVATIONS), key="activation", help="The nonlinearity after each hidden layer.")
    st.header("Optimizer")
    st.selectbox("Optimizer", tuple(OPTIMIZERS), key="optimizer", format_func=OPTIMIZERS.get,
                 help="SGD + momentum uses β = 0.9 (heavy ball); Adam uses β1 = 0.9, β2 = 0.999.")
    st.select_slider("Learning rate", LRS, key="lr", help="Step size of the optimizer.")
    st.number_input("Batch size", 1, MAX_CSV_ROWS, key="batch", help="Examples per step (at most the training set).")
    st.slider("Epochs", 5, 300, key="epochs", step=5, help="Passes over the training data.")
    st.header("Averaging")
    st.multiselect("Methods", METHODS, key="methods", format_func=METHOD_LABELS.get,
                   help="One panel each. SWA averages the epoch ends; Lookahead uses k = 5 steps, step 0.5.")
    alpha_slider("alpha", choices=ALPHAS)
    st.slider("SEMA switches every … epochs", 1, 20, key="switch", help="θ ← φ at the end of every k-th epoch.")
    st.slider("Seeds", 1, 10, key="seeds", help="Runs per method: the initial weights and batch order differ.")
    st.slider("Target test accuracy (%)", 50, 100, key="target", help="For the 'epochs to reach' column.")
sync_url(PARAMS)

preset_buttons(PRESETS, PRESET_HELP, on_apply=lambda: restart(KEY))
try:
    if s.dataset == "csv":
        if upload is None:
            st.info("Upload a CSV with the columns **x1, x2, label** in the sidebar (labels may be words).")
            csv_download(points_frame(), "example_moons", "⬇ Example CSV")
            st.stop()
        data, classes = csv_data(upload.getvalue(), s.test / 100, name=upload.name)
    else:
        data, classes = toy_data(s.dataset, s.size, s.noise, s.test / 100), None
except CSVError as err:
    st.error(f"This CSV cannot be used: {plain(err)}", icon="🚫")
    st.stop()

hidden = (s.width,) * s.layers
methods = tuple(m for m in METHODS if m in s.methods)
arch = "-".join(map(str, (2, *hidden, data.n_classes)))
target, chance = s.target / 100, 1 / data.n_classes
question = results.ask(PRESET_QUESTIONS, PRESETS, s.alpha)


def build(methods=methods):
    config = TrainConfig(methods=methods, seeds=tuple(range(s.seeds)), epochs=s.epochs, batch_size=s.batch,
                         optimizer=s.optimizer, lr=s.lr, ema_momentum=s.alpha, switch_epochs=s.switch,
                         grid_resolution=GRID, record_paths=True)
    return data, partial(mlp, 2, hidden, data.n_classes, s.activation), config


def panels(trainer, seed=0, chart=boundary_panels, grids=None):
    """The decision panels of one seed: drawn by the browser (boundary_view_data) or by matplotlib (downloads).
    ``grids``: that seed's, as a tick's figures bring them (default: read from the trainer)."""
    frame = trainer.frame()
    latest = frame[frame.seed == seed].groupby("method").test_acc.last()
    titles = {m: f"test accuracy {latest[m]:.1%}" if pd.notna(latest.get(m)) else "" for m in methods}
    notes = {m: f"diverged at epoch {e}" for (m, sd), e in trainer.diverged.items() if sd == seed}
    grids = {m: (trainer.grids.get((m, seed)) if grids is None else grids.get(m)) for m in methods}
    return chart(grids, data, trainer.extent, titles=titles, notes=notes, class_names=classes,
                 font_scale=display.font_scale())


def draw(trainer):
    frame, seed = trainer.frame(), shown_seed
    figures = results.figures(trainer, seed, threshold=target, question=question, chance=chance, alpha=s.alpha,
                              switch_steps=s.switch * trainer.steps_per_epoch, grids_seed=seed or 0)
    boundary_view(panels(trainer, seed or 0, chart=boundary_view_data, grids=figures.grids), key=f"{KEY}::boundaries")
    st.caption(f"Seed {seed or 0} of {s.seeds} (0 to {s.seeds - 1}), MLP {arch} ({s.activation}). ● training points, "
               "▲ test points; the dark line is where the predicted class changes, pale colour means the network "
               "is unsure.")
    for note in diverged_notes(frame):
        st.error(f"{note}: its loss became non-finite, so it stopped; the others continue.", icon="💥")
    results.curves(figures)
    st.caption("Test solid, train dashed (both of the evaluated weights: φ for EMA and SEMA); faint dotted "
               "lines mark SEMA's switches θ ← φ.")
    results.results(figures)
    results.notice(figures)
    paths_panel(KEY, source_from_trainer(trainer, is_playing(KEY)))


def remember(trainer):
    remember_run(TrainedRun(label=f"{data.name} · MLP {arch} {s.activation} · {s.seeds} seed(s)", source="toy",
                            data=data, model_fn=trainer.model_fn, config=trainer.config, models=trainer.models(),
                            paths=trainer.recorder))


display_only = ("target", "seed_view", *paths_params())      # controls that must not restart the run
settings = (tuple(str(s[k]) for k in PARAMS if k not in display_only), upload.file_id if upload else None)
shown_seed = results.seed_picker(KEY, s.seeds, chance)
trainer = live_training(KEY, build, draw, settings=settings, on_done=remember)
if trainer is not None:
    if trainer.batch_clamped:
        st.warning(f"Batch size {s.batch:,} is larger than the {len(data.x_train):,} training points: "
                   f"using {trainer.batch_size:,} (one step per epoch).", icon="✂️")
    horizon_warning(s.alpha, s.switch * trainer.steps_per_epoch, container=st.sidebar)
    if trainer.epoch and not is_playing(KEY):
        st.subheader("Export")
        metrics, pictures = st.columns([1, 2], vertical_alignment="bottom")
        metrics.caption("Every epoch of every run (method, seed):")
        csv_download(trainer.frame(), f"sema_toy_{data.name}_metrics", "⬇ Metrics (CSV)", container=metrics)
        pictures.caption("The decision panels as shown above:")
        figure_downloads(panels(trainer, shown_seed or 0), f"sema_toy_{data.name}_boundaries", container=pictures)

map_tab, = st.tabs(["🗺️ Map: when does SEMA help? (α × switch interval, measured)"])
with map_tab:
    _, map_model, map_base = build(("sgd", "ema", "sema"))   # the map compares these, whatever is ticked above
    measured_map_panel(data, map_model, map_base, target, (tuple(str(s[k]) for k in PARAMS if k not in (
        "alpha", "switch", "seeds", "methods", "seed_view")), settings[1]))
