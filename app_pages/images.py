"""Image classification: SGD, EMA and SEMA train the same small network side by side, live."""
import numpy as np
import streamlit as st

from sema_demo.averaging import METHODS
from sema_demo.charts.style import METHOD_NAMES
from sema_demo.datasets.images import DATASET_NAMES, DATASETS
from sema_demo.device import DEVICE_CHOICES, available_devices
from sema_demo.models import IMAGE_MODEL_NAMES, IMAGE_MODELS
from sema_demo.training import OPTIMIZERS, SCHEDULES
from sema_demo.ui import images as ui
from sema_demo.ui import results
from sema_demo.ui.common import ALPHA_CHOICES, Param, alpha_slider, bind_url, horizon_warning, preset_buttons, sync_url
from sema_demo.ui.paths import paths_panel, paths_params, source_from_trainer
from sema_demo.ui.training import is_playing, live_training, restart

LR_CHOICES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
BATCHES = (16, 32, 64, 128, 256)
PARAMS = {
    "dataset": Param("digits", choices=DATASETS),
    "per_class": Param(50, lo=1, hi=5000),
    "test_size": Param(300, lo=10, hi=10_000),
    "model": Param("cnn", choices=tuple(IMAGE_MODELS)),
    "width": Param(16, choices=(8, 16, 32, 48, 64)),
    "augment": Param(True),
    "methods": Param(["sgd", "ema", "sema"], choices=METHODS),
    "seeds": Param(2, lo=1, hi=10),
    "epochs": Param(12, lo=1, hi=200),
    "optimizer": Param("momentum", choices=OPTIMIZERS),
    "lr": Param(0.05, choices=LR_CHOICES),
    "schedule": Param("cosine", choices=SCHEDULES),
    "batch": Param(32, choices=BATCHES),
    "alpha": Param(0.9, choices=ALPHA_CHOICES),
    "switch": Param(1, lo=1, hi=50),
    "device": Param("auto", choices=DEVICE_CHOICES),
    "target": Param(90, lo=10, hi=99),
    **paths_params(grid=21), **results.SEED_PARAM,
}
QUICK = {"dataset": "digits", "per_class": 50, "test_size": 300, "model": "cnn", "width": 16, "epochs": 12,
         "batch": 32, "lr": 0.05, "schedule": "cosine", "alpha": 0.9, "switch": 1, "seeds": 2, "target": 90,
         "methods": ["sgd", "ema", "sema"]}
PRESETS = {
    "① Digits, quick": QUICK,
    "② α = 0.95": {**QUICK, "alpha": 0.95},
    "③ CIFAR-10": {**QUICK, "dataset": "cifar10", "per_class": 100, "test_size": 1000, "width": 32,
                          "epochs": 15, "batch": 64, "alpha": 0.95, "target": 40},
    "④ α = 0": {**QUICK, "alpha": 0.0},
}
PRESET_HELP = {
    "① Digits, quick": "The default: bundled 8×8 digits, a tiny CNN, seconds on a laptop CPU.",
    "② α = 0.95": "α = 0.95 remembers ≈ 20 steps, more than an epoch of 16: which reaches the target first?",
    "③ CIFAR-10": "1,000 CIFAR-10 images (needs `sema-demo fetch cifar10` once); minutes on a CPU.",
    "④ α = 0": "No averaging: φ = θ after every step, so all three methods must give the same curves.",
}
# The question each preset asks: the sentences under the table answer it (α = 0 asks "identity").
PRESET_QUESTIONS = {"① Digits, quick": "accuracy", "② α = 0.95": "speed", "③ CIFAR-10": "accuracy"}

bind_url(PARAMS)
st.title("🖼️ Image classification, live")
st.markdown("The same small network is trained three ways on the same images: the plain optimizer (**SGD**), "
            "its moving average (**EMA**) and **SEMA**, which copies the average φ back into the live weights θ "
            "at the end of every epoch. Every method of one seed starts from the **same weights** and sees the "
            "**same batches and augmentations**, so the differences come from the averaging alone.")

with st.sidebar:
    st.subheader("Data")
    st.selectbox("Data set", DATASETS, key="dataset", format_func=DATASET_NAMES.get,
                 help="Digits (8×8 handwritten digits) ship with scikit-learn and always work offline. "
                      "CIFAR-10/100 (32×32 colour photos) need one download: `sema-demo fetch cifar10`.")
    choice = ui.choose_images(st.session_state.dataset)
    most = int(np.bincount(choice.images.y_train).min())
    st.number_input("Training images per class", 1, 5000, key="per_class",
                    help="A stratified random subset: the same number of images of every class.")
    if st.session_state.per_class > most and choice.problem is None:
        st.caption(f"⚠️ {DATASET_NAMES[choice.name]} has only {most} per class: all of them are used.")
    st.number_input("Test images", 10, 10_000, key="test_size", step=100,
                    help="How many test images to evaluate on, spread evenly over the classes.")
    st.toggle("Augment (random crops, flips)", key="augment",
              help="Shift every training image by a few pixels (and mirror photos, not digits) each epoch; "
                   "the same draws for every method.")
    st.subheader("Network and optimizer")
    cm, cw = st.columns(2)
    cm.selectbox("Network", list(IMAGE_MODELS), key="model", format_func=IMAGE_MODEL_NAMES.get,
                 help="Small CNN: five conv-BN-ReLU layers. Small ResNet: three residual blocks.")
    cw.selectbox("Width", PARAMS["width"].choices, key="width", help="Channels of the first layer.")
    st.radio("Optimizer", OPTIMIZERS, key="optimizer", horizontal=True,
             format_func={"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam"}.get,
             help="The base optimizer of the live weights θ, the same for every method.")
    st.select_slider("Learning rate", LR_CHOICES, key="lr", format_func=lambda v: f"{v:g}",
                     help="Step size (log-spaced). Too large and a run diverges.")
    st.radio("Schedule", SCHEDULES, key="schedule", horizontal=True,
             help="constant: the same learning rate throughout; cosine: decays smoothly to 0 at the last step.")
    st.select_slider("Batch size", BATCHES, key="batch", help="Images per optimizer step.")
    st.subheader("Averaging")
    st.multiselect("Methods", METHODS, key="methods", format_func=METHOD_NAMES.get,
                   help="SGD: the plain optimizer. EMA: its moving average φ. SEMA: φ switched back into θ "
                        "every epoch. SWA and Lookahead: other averaging baselines.")
    alpha = alpha_slider("alpha")
    st.number_input("SEMA switches every … epochs", 1, 50, key="switch",
                    help="θ ← φ happens at the end of every this many epochs.")
    steps = -(-min(st.session_state.per_class, most) * choice.images.n_classes // st.session_state.batch)
    if choice.problem is None:
        horizon_warning(alpha, steps * st.session_state.switch)
    st.subheader("Run")
    st.slider("Epochs", 1, 200, key="epochs", help="Passes over the training subset.")
    st.slider("Seeds", 1, 10, key="seeds", help="Independent repeats (initial weights, batch order, augmentation); "
                                                "results are shown as mean ± std over them.")
    st.selectbox("Device", DEVICE_CHOICES, key="device",
                 format_func=lambda d: d if d == "auto" or d in available_devices() else f"{d} (not available)",
                 help="auto: CUDA, then Apple MPS, then CPU.")
    st.slider("“Epochs to X %” uses X =", 10, 99, key="target", format="%d %%",
              help="The results table counts the epochs until test accuracy first reaches this.")
sync_url(PARAMS)

preset_buttons(PRESETS, PRESET_HELP, on_apply=lambda: restart(ui.KEY))     # a preset starts playing
if choice.problem is not None:                  # never train Digits under CIFAR's name and target
    ui.missing_data_notice(choice, {"dataset": "digits", "target": QUICK["target"]})
    st.stop()

if not st.session_state.methods:
    st.warning("Pick at least one method in the sidebar.")
    st.stop()
settings = ui.ImageSettings.from_state(st.session_state, dataset=choice.name)
st.caption(f"Training: **{settings.label()}**")
question = results.ask(PRESET_QUESTIONS, PRESETS, alpha)
shown_seed = results.seed_picker(ui.KEY, settings.seeds, 1 / choice.images.n_classes)


def draw(trainer):
    ui.draw(trainer, choice, settings, st.session_state.target / 100, question, shown_seed)
    paths_panel(ui.KEY, source_from_trainer(trainer, is_playing(ui.KEY)), grid=21)


live_training(ui.KEY, lambda: ui.build(choice, settings), draw, settings=settings,
              on_done=lambda trainer: ui.remember(trainer, settings))
