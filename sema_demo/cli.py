"""Command line: ``sema-demo`` / ``python -m sema_demo``.

    sema-demo fetch cifar10                     # once, with internet: download, verify, extract
    sema-demo compare --dataset digits --epochs 10 --methods sgd,ema,sema --seeds 0,1,2 --out results/
    sema-demo claims --quick --out claims/       # the paper's claims, measured and judged

Every expected problem (a bad argument, missing data, a damaged file) ends with one
line starting ``error:`` and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import math
import shutil
import sys
import textwrap
import time
from functools import partial
from pathlib import Path

from . import __version__


def interrupted() -> int:
    """Ctrl-C: one word on stderr and the shell's exit code for SIGINT, never a traceback."""
    print("\ninterrupted", file=sys.stderr)
    return 130


try:   # torch, numpy and pandas take seconds to import: a Ctrl-C then must still read "interrupted"
    from .averaging import METHODS
    from .datasets import images as image_data
    from .outputs import OutputError, json_text, prepare_out_dir, write_outputs
except KeyboardInterrupt:
    sys.exit(interrupted())

RESULT_FILES = ("metrics.csv", "metrics.json", "curves.png")
CLAIMS_FILES = ("claims.json", "claims.md")
PATHS_FILES = ("paths.csv", "surface.npz", "plane.json", "paths.png")

CIFAR_EXAMPLE = ("sema-demo compare --dataset cifar10 --per-class 500 --test-size 2000 --width 32 \\\n"
                 "      --batch-size 128 --alpha 0.99 --epochs 30 --seeds 0,1,2 --out runs/c10")
EXAMPLES = f"""\
examples:
  sema-demo compare              # Digits (bundled, offline): SGD vs EMA vs SEMA, 2 seeds, seconds
  sema-demo fetch cifar10        # download CIFAR-10 once (≈ 170 MB, needs internet)
  {CIFAR_EXAMPLE}

Run `sema-demo COMMAND --help` for the options of one command.
"""
COMPARE_EXAMPLES = f"""\
examples:
  sema-demo compare --alpha 0.95 --out runs/horizon
  sema-demo compare --methods sgd,sema --seeds 0,1,2,3 --epochs 20
  {CIFAR_EXAMPLE}
"""


class ProgressBar:
    """A one-line text progress bar on stderr: redrawn in place on a terminal, every 10 % otherwise."""

    def __init__(self, total: float, label: str, stream=None, width: int = 28):
        self.total, self.label, self.width = total, label, width
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.live = self.stream.isatty()
        self.last_decile = -1

    def update(self, done: float, note: str = "") -> None:
        frac = min(done / self.total, 1.0) if self.total else 0.0
        decile = int(frac * 10)
        if not self.live and decile == self.last_decile:
            return
        self.last_decile = decile
        elapsed = time.perf_counter() - self.start
        eta = f"ETA {elapsed / frac * (1 - frac):4.0f} s" if 0 < frac < 1 else f"{elapsed:.1f} s"
        filled = round(frac * self.width)
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {frac:4.0%} {eta} {note}".rstrip()
        if self.live:
            cols = shutil.get_terminal_size().columns
            self.stream.write("\r" + line[: cols - 1].ljust(cols - 1))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


class CliError(Exception):
    """An expected problem: printed as one line, exit code 1."""


# ---------------------------------------------------------------------------- argument types

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def decay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"α is the EMA decay and must be in [0, 1) (e.g. 0.99), got {text}")
    return value


def method_list(text: str) -> tuple[str, ...]:
    methods = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {','.join(METHODS)}")
    return tuple(dict.fromkeys(methods))


def seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers separated by commas, e.g. 0,1,2; "
                                         f"got {text!r}") from None
    from .training import MAX_SEED

    if not seeds or min(seeds) < 0 or max(seeds) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"give one or more seeds from 0 to {MAX_SEED:,} (2**63 - 1), "
                                         f"e.g. 0,1,2; got {text[:40]!r}")
    return tuple(dict.fromkeys(seeds))


def percentage(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {text!r}") from None
    if not 0 <= value <= 100:     # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {text}")
    return value


# ---------------------------------------------------------------------------- the commands

def cmd_fetch(args: argparse.Namespace) -> int:
    spec = image_data.CIFAR[args.dataset]
    root = image_data.data_root(args.data_dir)
    if image_data.is_available(args.dataset, root):
        print(f"{spec.name} is already in {root / spec.folder}; nothing to do.")
        return 0
    print(f"Downloading {spec.url}\n  into {root}")
    bar = ProgressBar(0, spec.archive)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done, f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB")

    try:
        folder = image_data.fetch(spec, root, progress)
    finally:
        bar.close()
    print(f"Verified (MD5 {spec.md5}) and extracted to {folder}. The image page and "
          f"`sema-demo compare --dataset {spec.name}` now work offline.")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    # Torch-heavy imports only here, so that `--help` and `fetch` start at once.
    from .models import IMAGE_MODELS
    from .training import Trainer, TrainConfig

    out = prepare_out_dir(args.out, RESULT_FILES)     # before any work: a bad --out must not cost a run
    images = image_data.load_images(args.dataset, args.data_dir)
    data = image_data.make_data(images, args.per_class, args.test_size, seed=0, device=args.device,
                                augment=not args.no_augment)
    config = TrainConfig(methods=args.methods, seeds=args.seeds, epochs=args.epochs, batch_size=args.batch_size,
                         optimizer=args.optimizer, lr=args.lr, schedule=args.schedule, ema_momentum=args.alpha,
                         switch_epochs=args.switch_every, device=args.device)
    model_fn = partial(IMAGE_MODELS[args.model], images.image_shape[0], images.n_classes, args.width)
    trainer = Trainer(data, model_fn, config)
    print(f"{image_data.DATASET_NAMES[args.dataset]}: {len(data.x_train):,} training and {len(data.x_test):,} "
          f"test images; {args.model} on {trainer.device}; {', '.join(args.methods)} × "
          f"{plural(len(args.seeds), 'seed')}; {plural(args.epochs, 'epoch')} of "
          f"{plural(trainer.steps_per_epoch, 'step')}.", flush=True)
    between_switches = trainer.steps_per_epoch * args.switch_every
    if "sema" in args.methods and args.alpha > 0 and 1 / (1 - args.alpha) > 3 * between_switches:
        print(f"note: α = {args.alpha} remembers ≈ {1 / (1 - args.alpha):,.0f} steps, far more than the "
              f"{between_switches} steps between two SEMA switches; SEMA will restart from a slowly moving "
              "average (try a smaller --alpha or a larger --per-class).", flush=True)
    history = train_with_progress(trainer)
    write_results(args, out, trainer, history, len(data.x_test))
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    """Measure the paper's claims and write claims.json and claims.md (sema_demo/claims.py)."""
    from .claims import run_claims, write_report

    out = prepare_out_dir(args.out, CLAIMS_FILES)     # before any work: a bad --out must not cost a run
    bar = ProgressBar(1.0, "claims")
    try:
        report = run_claims(quick=args.quick, progress=lambda fraction, text: bar.update(fraction, text))
    finally:
        bar.close()
    for c in report["claims"]:
        low, high = c["ci"]
        print(f"{c['id']:>9}  {c['verdict']:<13}  {c['effect']:+.3g} [{low:+.3g}, {high:+.3g}]  {c['claim']}")
    paths = write_report(report, out)
    print(f"\n{len(report['claims'])} rows in {report['wall_s']:.0f} s. Wrote {paths[0]} and {paths[1]}.")
    return 0


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def train_with_progress(trainer):
    """Run every epoch with a progress bar showing each method's mean test accuracy."""
    epochs = trainer.config.epochs
    bar = ProgressBar(epochs, "training")

    def progress(rows: list[dict]) -> None:
        accuracy: dict[str, list[float]] = {}
        for row in rows:
            accuracy.setdefault(row["method"], []).append(row["test_acc"])
        note = " ".join(f"{m} {sum(v) / len(v):.1%}" for m, v in accuracy.items())
        bar.update(trainer.epoch, f"epoch {trainer.epoch}/{epochs} test acc {note}")

    try:
        return trainer.run(progress)
    finally:
        bar.close()


def write_results(args: argparse.Namespace, out: Path, trainer, history, test_size: int) -> None:
    """Print the summary, then write metrics.csv (one row per epoch, method and seed), metrics.json
    (settings, summary, history; null for non-finite numbers) and curves.png, all or none."""
    from .charts.images import curves_figure
    from .charts.training import diverged_notes, results_table, results_text

    best = history["test_acc"].max()                  # NaN when every run diverged
    if args.target is not None:
        target = args.target / 100
    else:
        target = round(0.9 * best, 3) if math.isfinite(best) else 1.0
    table = results_table(history, target)
    if history.groupby(["method", "seed"])["diverged"].any().all():
        verdict = "Every run diverged (non-finite weights, buffers or loss): there is nothing to compare. " \
                  "Try a smaller --lr."
    else:
        verdict = results_text(history, target).replace("**", "")
    print("\n" + table.to_string(index=False))
    print("".join(f"\n{note}." for note in diverged_notes(history)))
    print(verdict)
    report = {
        "dataset": args.dataset, "per_class": args.per_class, "test_size": test_size, "model": args.model,
        "width": args.width, "augment": not args.no_augment, "config": vars(trainer.config),
        "device": str(trainer.device), "target_accuracy": target, "summary": table.to_dict(orient="records"),
        "verdict": verdict, "history": history.to_dict(orient="records")}
    figure = curves_figure(history, trainer.switch_epochs() if "sema" in args.methods else None,
                           title=f"{image_data.DATASET_NAMES[args.dataset]}, {args.per_class} images per class")
    written = write_outputs(out, {
        "metrics.csv": lambda path: history.to_csv(path, index=False),
        "metrics.json": lambda path: path.write_text(json_text(report)),
        "curves.png": lambda path: figure.savefig(path, dpi=120, format="png"),
    })
    print(f"\nWrote {', '.join(map(str, written[:-1]))} and {written[-1]}.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sema-demo",
        description=textwrap.fill(
            "SEMA Lab: Switch EMA weight averaging, from the command line. SEMA keeps an exponential moving "
            "average (EMA) of the weights and copies it back into the model at the end of every epoch.", 79),
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sema-demo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    fetch = commands.add_parser(
        "fetch", help="download CIFAR-10 or CIFAR-100 once (needs internet)",
        description="Download the official CIFAR archive, check its MD5 checksum and extract it into the "
                    f"data folder (${image_data.DATA_ENV}, default ~/.cache/sema_demo). After this the "
                    "image page and `compare` work offline.")
    fetch.add_argument("dataset", choices=sorted(image_data.CIFAR), help="which data set to download")
    fetch.add_argument("--data-dir", metavar="DIR", help=f"data folder (default: ${image_data.DATA_ENV} "
                                                         "or ~/.cache/sema_demo)")
    fetch.set_defaults(func=cmd_fetch)

    compare = commands.add_parser(
        "compare", help="train SGD, EMA and SEMA side by side on an image subset",
        description=textwrap.fill(
            "Train the same small network with several methods side by side: every method of one seed "
            "starts from the same weights and sees the same batches and augmentations, so differences come "
            "from the method alone. The image subset is the same for all seeds; the seeds change the initial "
            "weights, the batch order and the augmentation draws. Writes metrics.csv, metrics.json and "
            "curves.png into --out. The defaults are a quick look at Digits (seconds on a laptop CPU).", 79),
        epilog=COMPARE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = compare.add_argument_group("data")
    data.add_argument("--dataset", choices=image_data.DATASETS, default="digits",
                      help="digits is bundled (8x8, offline); cifar10/cifar100 need `sema-demo fetch` once "
                           "(default: digits)")
    data.add_argument("--per-class", type=positive_int, default=50, metavar="N",
                      help="training images per class (default: %(default)s)")
    data.add_argument("--test-size", type=positive_int, default=300, metavar="N",
                      help="test images in all, spread evenly over the classes (default: %(default)s)")
    data.add_argument("--no-augment", action="store_true", help="turn off the random crops and flips")
    data.add_argument("--data-dir", metavar="DIR", help=f"folder with the fetched CIFAR files (default: "
                                                        f"${image_data.DATA_ENV} or ~/.cache/sema_demo)")
    train = compare.add_argument_group("training")
    train.add_argument("--methods", type=method_list, default=("sgd", "ema", "sema"), metavar="LIST",
                       help=f"comma-separated, from {','.join(METHODS)} (default: sgd,ema,sema)")
    train.add_argument("--seeds", type=seed_list, default=(0, 1), metavar="LIST",
                       help="comma-separated seeds; results are shown as mean ± std over them (default: 0,1)")
    train.add_argument("--epochs", type=positive_int, default=12, metavar="N",
                       help="passes over the training subset (default: %(default)s)")
    train.add_argument("--model", choices=("cnn", "resnet"), default="cnn",
                       help="small CNN or small ResNet (default: %(default)s)")
    train.add_argument("--width", type=positive_int, default=16, metavar="N",
                       help="channels of the first layer (default: %(default)s)")
    train.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="momentum",
                       help="base optimizer of the live weights (default: %(default)s)")
    train.add_argument("--lr", type=positive_float, default=0.05, metavar="LR",
                       help="learning rate (default: %(default)s)")
    train.add_argument("--schedule", choices=("constant", "cosine"), default="cosine",
                       help="learning-rate schedule over the run (default: %(default)s)")
    train.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                       help="images per optimizer step (default: %(default)s)")
    train.add_argument("--alpha", type=decay, default=0.9, metavar="A",
                       help="EMA decay α for EMA and SEMA: phi <- α·phi + (1-α)·theta after every step; it "
                            "remembers about 1/(1-α) steps (default: %(default)s)")
    train.add_argument("--switch-every", type=positive_int, default=1, metavar="EPOCHS",
                       help="SEMA copies the average back into the model every this many epochs "
                            "(default: %(default)s)")
    train.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                       help="auto picks CUDA, then Apple MPS, then CPU (default: auto)")
    output = compare.add_argument_group("output")
    output.add_argument("--target", type=percentage, default=None, metavar="PCT",
                        help="report the epochs until test accuracy first reaches PCT %% "
                             "(default: 90 %% of the best accuracy any run reached)")
    output.add_argument("--out", metavar="DIR", default="sema_results",
                        help="folder for metrics.csv, metrics.json and curves.png (default: %(default)s)")
    compare.set_defaults(func=cmd_compare)

    claims = commands.add_parser(
        "claims", help="measure the paper's claims and judge each by a stated rule",
        description=textwrap.fill(
            "Train SGD, EMA and SEMA on the toy default and a paper-like setting, measure convergence, accuracy, "
            "flatness, depth, smoothness and cost, and give every claim a verdict computed from its paired 95 % "
            "interval. Writes claims.json and claims.md into --out. Full: 20 seeds (seconds on a laptop CPU); --quick: 5 "
            "seeds, 20 epochs.", 79))
    claims.add_argument("--quick", action="store_true", help="fewer seeds and timing rounds (CI)")
    claims.add_argument("--out", metavar="DIR", default="sema_claims",
                        help="folder for claims.json and claims.md (default: %(default)s)")
    claims.set_defaults(func=cmd_claims)
    add_paths_parser(commands)
    return parser


# ---------------------------------------------------------------------------- sema-demo paths

TOY_SETS = ("moons", "circles", "spirals", "xor")
# The defaults of the Decision boundaries page (toy) and of the Image page (images).
PATHS_DEFAULTS = {"toy": {"epochs": 40, "alpha": 0.95, "grid": 31}, "images": {"epochs": 12, "alpha": 0.9, "grid": 21}}
PATHS_EXAMPLES = """\
examples:
  sema-demo paths --dataset moons --out runs/paths_moons
  sema-demo paths --dataset digits --plane pca --grid 21 --seeds 0,1 --out runs/paths_digits
"""


def add_paths_parser(commands) -> None:
    paths = commands.add_parser(
        "paths", help="draw the weight paths of SGD, EMA and SEMA on their own loss surface",
        description=textwrap.fill(
            "Train SGD, EMA and SEMA (the Decision boundaries page's defaults for the toy sets, the Image "
            "page's for images), record every run's weight path, and draw the paths of the first seed in a "
            "plane of weight space over the training loss. Writes paths.csv (method, seed, step, epoch, "
            "weights, x, y; each seed in its own plane), surface.npz (x, y, loss[iy, ix]), plane.json (the "
            "plane and each defining point with its true training loss) and paths.png into --out.", 79),
        epilog=PATHS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    paths.add_argument("--dataset", choices=TOY_SETS + image_data.DATASETS, default="moons",
                       help="a toy 2D set, or digits / cifar10 / cifar100 (default: %(default)s)")
    paths.add_argument("--plane", choices=("solutions", "pca"), default="solutions",
                       help="through the three solutions, or the principal directions of the paths "
                            "(default: %(default)s)")
    paths.add_argument("--grid", type=positive_int, default=None, metavar="N",
                       help="surface points per axis, at least 3 (default: 31 toy, 21 images)")
    paths.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                       help="passes over the training data (default: 40 toy, 12 images)")
    paths.add_argument("--seeds", type=seed_list, default=(0,), metavar="LIST",
                       help="comma-separated seeds; the figure shows the first (default: 0)")
    paths.add_argument("--alpha", type=decay, default=None, metavar="A",
                       help="EMA decay α: phi <- α·phi + (1-α)·theta after every step "
                            "(default: 0.95 toy, 0.9 images)")
    paths.add_argument("--switch-every", type=positive_int, default=1, metavar="EPOCHS",
                       help="SEMA copies φ back into θ every this many epochs (default: %(default)s)")
    paths.add_argument("--data-dir", metavar="DIR", help="folder with the fetched CIFAR files")
    paths.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                       help="auto picks CUDA, then Apple MPS, then CPU (default: auto)")
    paths.add_argument("--out", metavar="DIR", required=True, help="folder for the four files")
    paths.set_defaults(func=cmd_paths)


def _paths_trainer(args: argparse.Namespace):
    """The trainer of ``sema-demo paths``: the page defaults of the chosen data set, recording paths."""
    from .datasets.toy import toy_data
    from .models import IMAGE_MODELS, mlp
    from .training import Trainer, TrainConfig

    toy = args.dataset in TOY_SETS
    defaults = PATHS_DEFAULTS["toy" if toy else "images"]
    common = dict(methods=("sgd", "ema", "sema"), seeds=args.seeds, epochs=args.epochs or defaults["epochs"],
                  ema_momentum=defaults["alpha"] if args.alpha is None else args.alpha,
                  switch_epochs=args.switch_every, device=args.device, record_paths=True)
    if toy:
        data = toy_data(args.dataset, 800, 0.3, 0.2)
        config = TrainConfig(batch_size=16, optimizer="momentum", lr=0.3, **common)
        return Trainer(data, partial(mlp, 2, (32, 32), data.n_classes, "relu"), config)
    images = image_data.load_images(args.dataset, args.data_dir)
    data = image_data.make_data(images, 50, 300, seed=0, device=args.device, augment=True)
    config = TrainConfig(batch_size=32, optimizer="momentum", lr=0.05, schedule="cosine", **common)
    return Trainer(data, partial(IMAGE_MODELS["cnn"], images.image_shape[0], images.n_classes, 16), config)


def cmd_paths(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    from .charts.paths import paths_figure
    from .paths import PATH_COLUMNS, path_notes, point_losses, probe_subset, study_paths, surface_grid

    grid_size = args.grid or PATHS_DEFAULTS["toy" if args.dataset in TOY_SETS else "images"]["grid"]
    if grid_size < 3:
        raise CliError(f"--grid must be at least 3 points per axis, got {grid_size}")
    out = prepare_out_dir(args.out, PATHS_FILES)      # before any work: a bad --out must not cost a run
    trainer = _paths_trainer(args)
    print(f"{args.dataset}: {len(trainer.x_train):,} training examples; sgd, ema, sema × "
          f"{plural(len(args.seeds), 'seed')}; {plural(trainer.config.epochs, 'epoch')} on {trainer.device}.",
          flush=True)
    train_with_progress(trainer)
    if trainer.recorder.skipped:
        raise CliError(f"paths were not recorded: {trainer.recorder.skipped}")
    models = trainer.models()
    x, y = probe_subset(trainer.x_train, trainer.y_train)
    studies = {seed: study_paths(trainer.recorder, models, seed, args.plane) for seed in args.seeds}
    first = studies[args.seeds[0]]
    points = {seed: point_losses(study, models, x, y) for seed, study in studies.items()}
    grid = surface_grid(first, models[(first.points[0]["method"], first.seed)], x, y, grid_size)
    frame = pd.concat([s.frame[PATH_COLUMNS] for s in studies.values()], ignore_index=True)
    plane = first.plane
    described = {"kind": plane.kind, "seed": first.seed, "centre": plane.centre, "explained": plane.explained,
                 "note": plane.note, "surface_points": len(x),
                 "in_plane": {f"{m}/{w}": v for (m, w), v in first.in_plane.items()}}
    keep = ("method", "seed", "x", "y", "loss")
    report = {"plane": described, "points": [{k: p[k] for k in keep} for seed in args.seeds for p in points[seed]]}
    figure = paths_figure(first, grid, points[first.seed])
    write_outputs(out, {"paths.csv": lambda path: frame.to_csv(path, index=False),
                        "surface.npz": lambda path: np.savez(path, x=grid.x, y=grid.y, loss=grid.loss),
                        "plane.json": lambda path: path.write_text(json_text(report)),
                        "paths.png": lambda path: figure.savefig(path, format="png", dpi=120)})
    print("\n" + "\n".join(line.replace("**", "") for line in path_notes(first, points[first.seed])))
    print(f"\nWrote {out / 'paths.csv'}, {out / 'surface.npz'}, {out / 'plane.json'} and {out / 'paths.png'}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (CliError, image_data.DataError, OutputError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return interrupted()


if __name__ == "__main__":
    sys.exit(main())
