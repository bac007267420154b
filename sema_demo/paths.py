"""Paths of trained networks on their own loss surface: recording, planes, projection, the surface.

    config = TrainConfig(..., record_paths=True)       # the engine keeps every run's weight path
    trainer = Trainer(data, model_fn, config); trainer.run()
    study = study_paths(trainer.recorder, trainer.models(), seed=0, plane="solutions")
    grid = surface_grid(study, trainer.models()[("sgd", 0)], x_train, y_train, resolution=31)
    study.frame                                          # method, seed, step, epoch, weights, x, y, kind

A network's weights are one point of a space with thousands of dimensions; a picture
has two.  The picture is honest only when it says which plane it shows and how much of
the motion lies in it:

* **Recording.**  ``PathRecorder`` (driven by the training engine when
  ``TrainConfig.record_paths`` is set) snapshots θ of every (method, seed) run, and φ of
  every averaging method, every ``every`` optimizer steps — ``every`` chosen so that a
  run keeps at most ``MAX_STEP_SNAPSHOTS`` of them — plus at the end of every epoch, and
  SEMA's θ just after each switch θ ← φ (the epoch-end snapshot is the θ just before).
  Snapshots are the weights in float16 (to ~0.02 % of each weight: the pictures' coordinates
  and in-plane shares move by ~1e-4 of their size against float32), written into a
  preallocated buffer on the engine's device and moved to the CPU in chunks (a snapshot is
  a copy or two: recording costs next to nothing beside training).  Offsets from the start
  were twice as precise early on, and subtracting the start, a second state read from
  memory each time, was two thirds of the toy page's recording cost.  Memory is bounded before training
  starts: ``bound_bytes`` ≤ ``budget_bytes`` (``PATH_MEMORY_BYTES`` by default); fewer
  step snapshots are kept when the network is large, and recording is skipped (with a
  reason in ``skipped``) when not even the epoch ends fit.  On top of the snapshots it holds
  the device buffer (at most ``PathRecorder.CHUNK_BYTES``) and, for an engine read through a
  copy, one float32 state (the one being written).
* **Planes.**  "solutions": the plane through the final *evaluated* weights of SGD (θ),
  EMA (φ) and SEMA (φ) of one seed, orthonormalised by Gram–Schmidt; (0, 0) is SGD's
  end and the three points lie in it exactly.  "pca": the top two principal directions
  of the pooled path of every method of the seed (θ and φ snapshots), centred at the
  mean of that pooled path, with the share of its variance each direction explains.
* **Projection.**  Each path is projected orthogonally; ``in_plane`` is the projected
  path length ÷ the true path length (1 for a path that lies in the plane).
* **Surface.**  The loss on a grid over the plane, evaluated by the one evaluator,
  :meth:`sema_demo.sharpness.LossSurface.losses`, with the plane's orthonormal basis as
  the directions and its origin as the origin.  The "state" that moves is what the
  landscape page's straight path moves: the parameters *and* BatchNorm's running
  statistics, together (so each defining point is evaluated exactly as trained).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .sharpness import LossSurface

__all__ = ["PathRecorder", "RunPath", "Plane", "Projection", "PathStudy", "SurfaceGrid", "PLANES",
           "state_vector", "state_layout", "solutions_plane", "pca_plane", "project", "study_paths",
           "surface_grid", "grid_axes", "point_losses", "path_notes", "probe_subset", "PATH_COLUMNS",
           "MAX_STEP_SNAPSHOTS", "PATH_MEMORY_BYTES", "RECORDED_ENDS", "switch_rows"]

MAX_STEP_SNAPSHOTS = 300          # step snapshots a run keeps at most (epoch ends and switches come on top)
PATH_MEMORY_BYTES = 64 * 2**20    # what one trainer's recording may hold (float16 snapshots)
GRAIN = 32_768                    # elements per piece of a snapshot's copy (PyTorch's parallel grain)
PCA_ROWS = 600                    # the pooled path is thinned to this many snapshots for PCA
PLANES = {"solutions": "through the three solutions", "pca": "principal directions of the paths"}
PATH_COLUMNS = ["method", "seed", "step", "epoch", "weights", "x", "y"]
SURFACE_POINTS = {"flat": 1_000, "images": 500}   # examples the surface is measured on, at most (evenly spaced)
PLANE_METHODS = ("sgd", "ema", "sema", "swa", "lookahead")   # whose ends span the solutions plane, in order
# Whose last recorded snapshot at an epoch end *is* the evaluated weights (θ for SGD, φ for the
# others), so that a live picture can take its ends from the recording alone.  Not SWA: its
# evaluated average takes in the epoch's end after the snapshot.
RECORDED_ENDS = ("sgd", "ema", "sema", "lookahead")


def switch_rows(kinds) -> np.ndarray:
    """Where SEMA's "switch" snapshots are in a path's ``kinds`` (in step order).  The snapshot just
    before each is θ at its own epoch's end (the same step), where the jump θ ← φ starts."""
    return np.flatnonzero(np.asarray(kinds, dtype=object) == "switch")


# ------------------------------------------------------------------------------ flat weight vectors

def state_layout(model: nn.Module) -> list[tuple[str, torch.Size]]:
    """(name, shape) of what a point in weight space moves, in :class:`LossSurface`'s order:
    the parameters, then the floating buffers (BatchNorm running statistics)."""
    return ([(n, p.shape) for n, p in model.named_parameters()]
            + [(n, b.shape) for n, b in model.named_buffers() if b.is_floating_point()])


def state_vector(model: nn.Module) -> Tensor:
    """The flat state of a network (parameters then floating buffers), float32, on its device."""
    tensors = [p for _, p in model.named_parameters()] + [b for _, b in model.named_buffers() if b.is_floating_point()]
    return torch.cat([t.detach().reshape(-1).float() for t in tensors])


def _unflatten(vector: Tensor, like: dict[str, Tensor]) -> dict[str, Tensor]:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start:start + t.numel()].view(t.shape).to(t)
        start += t.numel()
    return out


# ------------------------------------------------------------------------------ recording


@dataclass
class RunPath:
    """The recorded path of one (method, seed) run."""

    method: str
    seed: int
    steps: np.ndarray            # (T,) optimizer steps done at each snapshot
    kinds: list[str]             # "start" | "step" | "epoch" (end, before a switch) | "switch" (just after)
    live: Tensor                 # (T, n) θ, float32
    average: Tensor | None       # (T, n) φ, or None for the plain optimizer (it evaluates θ)
    steps_per_epoch: int

    @property
    def epochs(self) -> np.ndarray:
        return self.steps / self.steps_per_epoch


class PathRecorder:
    """Keeps the weight path of every run of a trainer, within a stated memory bound.

    The engine calls :meth:`record` at the start, :meth:`after_step` after every optimizer
    step (or, as the Trainer does, :meth:`record_step` at the steps :meth:`due` names and
    :meth:`advance` after them), and :meth:`record` at each epoch end ("epoch") and after
    SEMA's switch ("switch").

    A snapshot must cost next to nothing beside a training step, so it is a few fused ops on
    the engine's device: ``engine.path_writer(out, averaged)()`` writes θ of every run and φ of
    the averaged rows, float32, in the engine's own flat layout and row order
    (``engine.path_layout(averaged)`` and, if the engine has it, ``engine.path_order(averaged)``
    say how to read it), and that is copied as float16 into a preallocated buffer on that
    device.  On the CPU that buffer, as large as the bound, is the
    recording itself; on an accelerator it moves to the CPU in whole chunks when it is full or
    when the path is read (:meth:`path`, :attr:`snapshots`).  Snapshots are put in the order of
    :func:`state_vector` only when read.  An engine whose own tensors hold a snapshot names them
    (``engine.path_source(averaged)``: one tensor, or several one after the other) and is read
    in place, with no copy.  An engine without ``path_writer`` is read through
    ``engine.state_rows(average)``, the (runs, n) flat states of θ (False) or φ (True).
    After SEMA's switch a trainer may call :meth:`record_switch`, which writes the snapshot from
    the epoch end's one.

    Args:
        runs: the (method, seed) runs, in the trainer's order.
        n: size of one flat state (parameters and floating buffers).
        steps_per_epoch, epochs, switch_epochs: the schedule, to size the bound up front.
        max_step_snapshots: step snapshots per run at most (epoch ends and switches come on top).
        budget_bytes: the most the recording may hold (default: ``PATH_MEMORY_BYTES``).
    """

    CHUNK_BYTES = 4 * 2**20       # the device buffer, at most (it moves to the CPU when full)
    IN_PLACE_DEVICES = ("cpu",)   # devices whose buffer is the recording itself (no chunks, no copies)

    def __init__(self, runs: Sequence[tuple[str, int]], n: int, steps_per_epoch: int, epochs: int,
                 switch_epochs: int, max_step_snapshots: int = MAX_STEP_SNAPSHOTS,
                 budget_bytes: int | None = None):
        self.runs, self.n, self.steps_per_epoch = list(runs), n, steps_per_epoch
        budget_bytes = PATH_MEMORY_BYTES if budget_bytes is None else budget_bytes
        self.averaged = [i for i, (m, _) in enumerate(self.runs) if m != "sgd"]   # rows with a φ worth keeping
        self.snapshot_bytes = (len(self.runs) + len(self.averaged)) * n * 2        # float16
        total = steps_per_epoch * epochs
        switches = epochs // switch_epochs if any(m == "sema" for m, _ in self.runs) else 0
        fixed = 1 + epochs + switches                                             # start, epoch ends, switches
        room = budget_bytes // self.snapshot_bytes - fixed
        self.skipped: str | None = None
        if room < 0:
            self.every = 0
            self.skipped = (f"recording the paths would need {fixed * self.snapshot_bytes / 2**20:.0f} MB for the "
                            f"epoch ends alone, more than the {budget_bytes / 2**20:.0f} MB allowed; "
                            "use fewer seeds, methods or epochs, or a smaller network")
            self.bound_bytes = 0
        else:
            wanted = min(max_step_snapshots, room)
            self.every = math.ceil(total / wanted) if wanted else total + 1    # snapshot every this many steps
            self.bound_bytes = (fixed + total // self.every) * self.snapshot_bytes
        self.budget_bytes = budget_bytes
        self.capacity = 0 if self.skipped else self.bound_bytes // self.snapshot_bytes   # snapshots at most
        self.step = 0
        self.steps: list[int] = []
        self.kinds: list[str] = []
        self._kept: list[Tensor] = []        # per snapshot (m,) float16 on the CPU, in the engine's layout
        self.layout: list[tuple[int, list[int]]] = []   # how a flat snapshot splits into rows (see _rows)
        self.order: list[int] | None = None  # the snapshot row of each decoded row, when not in order (_decode)
        self._buffer: Tensor | None = None   # (slots, m) float16 on the engine's device (see _new_buffer)
        self._in_place = False               # a CPU buffer: its rows are the recording, never copied
        self._taken = 0                      # rows of an in-place buffer already in _kept
        self._stage: list[Tensor] | None = None   # the snapshot before it is written, in parts
        self._pieces: list[int] | None = None    # sizes of the pieces a snapshot is copied in
        self._filled = 0
        self._snapshot = None                # fills the stage from the engine (set at the first record)
        self._decoded: tuple[int, Tensor] | None = None   # (snapshots, (T, rows, n) float16) of the last read
        self.patches: dict[int, list[int]] = {}   # snapshot → runs whose θ row is read from their φ row (record_switch)

    @property
    def snapshots(self) -> list[Tensor]:
        """Per snapshot, the (m,) float16 weights on the CPU (the engine's layout)."""
        self._flush()
        return self._kept

    @property
    def nbytes(self) -> int:
        return (sum(t.numel() * t.element_size() for t in self._kept)
                + (self._filled - self._taken) * self.snapshot_bytes)

    def _setup(self, engine) -> None:
        """At the first snapshot: the layout, the start and the buffers, on the engine's device."""
        fast = hasattr(engine, "path_writer")
        if fast:
            self.layout = [(rows, list(sizes)) for rows, sizes in engine.path_layout(self.averaged)]
            order = engine.path_order(self.averaged) if hasattr(engine, "path_order") else None
            self.order = None if order is None or order == list(range(len(order))) else order
        else:
            self.layout = [(len(self.runs) + len(self.averaged), [self.n])]
        m = sum(rows * sum(sizes) for rows, sizes in self.layout)
        device = engine.path_device() if fast else engine.state_rows(average=False).device
        # An engine whose own tensors are a snapshot is read in place (``path_source``): no copy at all.
        # It may name one tensor (the batched engine's store) or several, one after the other (the
        # per-run engine: each module's own flat state).
        source = engine.path_source(self.averaged) if fast and hasattr(engine, "path_source") else None
        self._m, self._device = m, device
        # On the CPU the buffer is the recording itself, as large as the bound (at most PATH_MEMORY_BYTES):
        # its rows become the snapshots in place.  Moving 4 MB chunks into fresh memory and splitting
        # them was a third of the recording's cost on the toy page's epoch (benchmarks/bench_paths.py).
        self._in_place = device.type in self.IN_PLACE_DEVICES
        self._new_buffer()
        if source is not None:
            parts = [source] if isinstance(source, Tensor) else list(source)
            self._snapshot = lambda: None
        else:
            parts = [torch.empty(m, device=device)]
            self._snapshot = engine.path_writer(parts[0], self.averaged) if fast else self._rows_of(engine, parts[0])
            self._snapshot()
        self._stage = parts                              # (read, never written, when the engine's own)
        # A plain copy to float16, in pieces below PyTorch's parallel grain (a copy this size gains
        # nothing from a second thread, and on a busy machine waiting for one costs milliseconds);
        # a source of several tensors, tensor by tensor.
        stage_parts = [piece for part in parts for piece in part.split(GRAIN)]
        self._pieces = [piece.numel() for piece in stage_parts]
        self._slice_slots()
        if len(stage_parts) == 1:
            stage = stage_parts[0]
            self._write = lambda row: row.copy_(stage)
        else:
            self._write = lambda row: torch._foreach_copy_(row, stage_parts)

    def _new_buffer(self) -> None:
        m = self._m
        slots = max(1, self.capacity if self._in_place else min(self.capacity, self.CHUNK_BYTES // max(1, 2 * m)))
        # zeros, not empty: every page touched now, at the start, not by a snapshot in mid-training
        # (a first touch per snapshot cost six times the snapshot's copy)
        self._buffer = torch.zeros(slots, m, device=self._device, dtype=torch.float16)
        self._filled = self._taken = 0
        if self._pieces is not None:
            self._slice_slots()

    def _slice_slots(self) -> None:
        self._slots = list(self._buffer) if len(self._pieces) == 1 else [row.split(self._pieces) for row in self._buffer]

    def _rows_of(self, engine, out: Tensor):
        def fill() -> None:
            theta = engine.state_rows(average=False)
            rows = torch.cat([theta, engine.state_rows(average=True)[self.averaged]]) if self.averaged else theta
            out.copy_(rows.reshape(-1))
        return fill

    def record(self, engine, kind: str, step: int | None = None) -> None:
        """One snapshot of every run, at ``step`` (default: the steps counted so far; what is read is
        detached: no autograd mode is needed)."""
        if self._snapshot is None:
            if self.skipped:
                return
            self._setup(engine)
        else:
            self._snapshot()
        if self._filled == len(self._slots):
            self._flush()
            if self._in_place:
                self._new_buffer()
        self._write(self._slots[self._filled])
        self._filled += 1
        self.steps.append(self.step if step is None else step)
        self.kinds.append(kind)

    def record_switch(self, engine, switched: Sequence[int]) -> None:
        """The snapshot just after SEMA's switch, for a trainer whose epoch end did nothing but the
        switch θ ← φ of the runs ``switched`` (indices into ``runs``) since the last snapshot (the
        epoch end's): that snapshot again, a copy of one float16 row hot in cache, and the note
        (``patches``) that those runs' θ rows are read from their φ rows.  Exact: θ ← φ is a copy,
        so the two rows hold the same numbers.  Anything else (the buffer just moved on, another
        kind of snapshot last) takes a snapshot as :meth:`record` does."""
        if (self._snapshot is None or not self._filled or self._filled == len(self._slots)
                or self.kinds[-1] != "epoch"):
            self.record(engine, "switch")
            return
        self._buffer[self._filled].copy_(self._buffer[self._filled - 1])
        if switched:
            self.patches[len(self.steps)] = list(switched)
        self._filled += 1
        self.steps.append(self.step)
        self.kinds.append("switch")

    def _patch(self, rows: Tensor, first: int) -> None:
        """Applies ``patches`` to decoded snapshots ``first``, ``first + 1``, … (``rows``, in place)."""
        for t, switched in self.patches.items():
            if first <= t < first + len(rows):
                for i in switched:
                    rows[t - first, i] = rows[t - first, len(self.runs) + self.averaged.index(i)]

    def after_step(self, engine) -> None:
        """Counts the step; a snapshot every ``every`` steps (an epoch end gets its own, with its kind)."""
        self.step += 1
        if self._due_at(self.step):
            self.record(engine, "step")

    def _due_at(self, step: int) -> bool:
        """A step snapshot after this step: every ``every``-th, except an epoch's last (it gets its own)."""
        return bool(self.every) and step % self.every == 0 and step % self.steps_per_epoch != 0

    def due(self, steps: int) -> frozenset[int]:
        """Of the next ``steps`` steps (1 = the next), those :meth:`after_step` would snapshot after.

        A trainer may snapshot at just these (:meth:`record_step`) and then :meth:`advance`, instead
        of calling :meth:`after_step` at every step (that call was a quarter of the recording's cost
        on the toy page's epoch, benchmarks/bench_paths.py)."""
        return frozenset(k for k in range(1, steps + 1) if self._due_at(self.step + k))

    def record_step(self, engine, k: int) -> None:
        """The snapshot after the ``k``-th of the steps :meth:`due` was asked about."""
        self.record(engine, "step", self.step + k)

    def advance(self, steps: int) -> None:
        """``steps`` steps were taken since :meth:`due` (their snapshots by :meth:`record_step`)."""
        self.step += steps

    def _flush(self) -> None:
        """Hands the buffered snapshots to ``_kept``: an in-place (CPU) buffer's rows as they are,
        a device buffer's moved to the CPU in one copy, freeing it for more."""
        if self._filled == self._taken:
            return
        if self._in_place:
            self._kept.extend(self._buffer[self._taken:self._filled].unbind(0))
            self._taken = self._filled
            return
        chunk = self._buffer[:self._filled].to("cpu", copy=True)
        self._kept.extend(chunk.unbind(0))
        self._filled = 0

    def _decode(self, flat: Tensor) -> Tensor:
        """(T, m) flat snapshots → (T, runs + averaged, n) in :func:`state_vector` order: row i of the
        first ``len(runs)`` is θ of ``runs[i]``, then φ of ``runs[averaged[j]]``.

        ``layout`` lists the parts of a flat snapshot: ``(rows, sizes)`` is a part holding, block
        after block, a (rows, size) block per entry of ``sizes``; a row's state is its slice of
        every block, in order (the batched engine stores each layer of every run together).  An
        engine that keeps its rows in an order of its own says where each decoded row is
        (``engine.path_order(averaged)``, kept in ``order``)."""
        parts, at = [], 0
        for rows, sizes in self.layout:
            blocks = []
            for size in sizes:
                blocks.append(flat[:, at:at + rows * size].reshape(len(flat), rows, size))
                at += rows * size
            parts.append(torch.cat(blocks, dim=2) if len(blocks) > 1 else blocks[0])
        decoded = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        return decoded if self.order is None else decoded[:, self.order]

    def _rows(self) -> Tensor:
        """Every snapshot decoded (float16, CPU), kept; snapshots recorded since (a live page reads
        the path once an epoch) are decoded on their own and written after the others, into room
        kept for them (doubled when full: at most twice the snapshots' own size), so a read costs what
        was recorded since, not the whole path again."""
        kept = self.snapshots
        have, rows = self._decoded or (0, None)
        if have > len(kept) or rows is None:
            have, rows = 0, None
        if have < len(kept):
            new = self._decode(torch.stack(kept[have:]))
            self._patch(new, have)
            if rows is None or have + len(new) > len(rows):
                room = torch.empty((max(2 * (have + len(new)), 16), *new.shape[1:]), dtype=new.dtype)
                if have:
                    room[:have] = rows[:have]
                rows = room
            rows[have:have + len(new)] = new
            self._decoded = (len(kept), rows)
        return self._decoded[1][:len(kept)]

    def path(self, run: tuple[str, int]) -> RunPath:
        """The recorded path of one run (float32)."""
        if self.skipped or not (self._kept or self._filled):
            raise ValueError(self.skipped or "nothing recorded yet")
        i = self.runs.index(run)
        rows = self._rows()
        live = rows[:, i].float()
        average = None
        if i in self.averaged:
            average = rows[:, len(self.runs) + self.averaged.index(i)].float()
        return RunPath(run[0], run[1], np.array(self.steps), list(self.kinds), live, average, self.steps_per_epoch)

    def __getstate__(self) -> dict:
        """Pickled (to a Dask client, or back from :func:`~sema_demo.engine.offload`) with its
        snapshots on the CPU in one packed tensor and no device buffers.

        Packed, because each snapshot is a row view of a flushed chunk, and pickle writes a view
        with its whole storage: a list of them pickled to the chunk's size once per snapshot (a
        10-epoch toy recording of 7 MB was 780 MB)."""
        self._flush()
        state = dict(self.__dict__)
        state.update(_buffer=None, _stage=None, _snapshot=None, _decoded=None, _slots=None, _write=None,
                     _filled=0, _taken=0, _device=None,
                     _kept=torch.stack(self._kept) if self._kept else None)
        return state

    def __setstate__(self, state: dict) -> None:
        packed = state.pop("_kept")
        self.__dict__.update(state)
        self._kept = [] if packed is None else list(packed.unbind(0))


# ------------------------------------------------------------------------------ planes and projection

@dataclass
class Plane:
    """An affine plane in weight space: origin + x·basis[0] + y·basis[1], basis orthonormal."""

    kind: str                               # "solutions" | "pca"
    origin: Tensor                          # (n,) float32
    basis: Tensor                           # (2, n) float32, orthonormal rows
    centre: str                             # where (0, 0) is, in words
    explained: tuple[float, float] | None = None   # PCA: share of the pooled path's variance per axis
    note: str = ""                          # why a fallback was taken, if one was

    def coords(self, points: Tensor) -> Tensor:
        """(T, 2) coordinates of the orthogonal projections of (T, n) points."""
        return (points.to(self.origin) - self.origin) @ self.basis.T


def _orthonormal(vectors: Sequence[Tensor]) -> list[Tensor]:
    """Gram–Schmidt in float64; vectors that add (almost) nothing new are dropped."""
    basis: list[Tensor] = []
    for v in vectors:
        v = v.double()
        scale = v.norm()
        for b in basis:
            v = v - (v @ b) * b
        if scale > 0 and v.norm() > 1e-6 * scale:
            basis.append(v / v.norm())
    return basis


def solutions_plane(points: dict[str, Tensor], pooled: Tensor | None = None) -> Plane:
    """The plane through the evaluated end points of (up to) three methods of one seed.

    ``points`` maps method -> flat state; the first three of SGD, EMA, SEMA, SWA, Lookahead
    present define the plane (origin: the first).  If they do not span a plane (e.g. α = 0
    makes them coincide), the missing directions come from PCA of ``pooled`` (the paths).
    """
    methods = [m for m in PLANE_METHODS if m in points][:3]
    if not methods:
        raise ValueError("no end points to span a plane")
    origin = points[methods[0]].double()
    basis = _orthonormal([points[m].double() - origin for m in methods[1:]])
    note = ""
    if len(basis) < 2:
        if pooled is None:
            raise ValueError("the end points do not span a plane")
        residual = pooled.double() - origin
        for b in basis:
            residual = residual - (residual @ b)[:, None] * b
        extra, _ = _principal(residual, 2 - len(basis))
        basis = _orthonormal([*basis, *extra])
        if len(basis) < 2:
            raise ValueError("the weights have not moved in two directions yet")
        note = (f"The ends of {', '.join(methods)} do not span a plane (they coincide or lie on one line), "
                "so the missing direction is the main direction of the paths.")
    names = {"sgd": "SGD", "ema": "EMA", "sema": "SEMA", "swa": "SWA", "lookahead": "Lookahead"}
    centre = f"{names.get(methods[0], methods[0])}'s end"
    return Plane("solutions", origin.float(), torch.stack(basis).float(), centre, note=note)


def _principal(x: Tensor, k: int) -> tuple[list[Tensor], Tensor]:
    """Top-k principal directions of the rows of ``x`` (already centred) and all eigenvalues of its
    Gram matrix, descending; via the smaller of xᵀx and xxᵀ (exact, in x's dtype)."""
    rows, cols = x.shape
    if cols <= rows:
        values, vectors = torch.linalg.eigh(x.T @ x)
        values, vectors = values.flip(0), vectors.flip(1)
        directions = [vectors[:, i] for i in range(k)]
    else:
        values, vectors = torch.linalg.eigh(x @ x.T)
        values, vectors = values.flip(0), vectors.flip(1)
        directions = [x.T @ vectors[:, i] for i in range(k)]
        directions = [d / d.norm() if d.norm() > 0 else d for d in directions]
    return directions, values.clamp_min(0)


def pca_plane(pooled: Tensor, rows: int = PCA_ROWS) -> Plane:
    """The top-2 principal directions of the pooled path (rows = snapshots), centred at its mean.

    More than ``rows`` snapshots are thinned evenly first.  ``explained`` is each direction's
    share of the total variance (what numpy's SVD gives as s²/Σs²).
    """
    if len(pooled) > rows:
        pooled = pooled[torch.linspace(0, len(pooled) - 1, rows).round().long()]
    mean = pooled.mean(0)
    centred = pooled - mean
    directions, values = _principal(centred, 2)
    total = float(values.sum())
    if total <= 0 or len(_orthonormal(directions)) < 2:
        raise ValueError("the paths do not move in two directions: there is no principal plane")
    # Orient each axis so that the pooled path's last snapshot lies on its positive side of the first.
    step = centred[-1] - centred[0]
    directions = [d if float(step @ d) >= 0 else -d for d in directions]
    explained = tuple(float(v) / total for v in values[:2])
    return Plane("pca", mean.float(), torch.stack(directions).float(), "the mean of the paths", explained)


@dataclass
class Projection:
    coords: np.ndarray          # (T, 2)
    in_plane: float             # projected path length ÷ true path length (1: the path lies in the plane)
    residual: float             # largest distance of a snapshot from the plane


def project(points: Tensor, plane: Plane) -> Projection:
    """Orthogonal projection of a (T, n) path onto ``plane``, with how faithful it is."""
    points = points.to(plane.origin)
    coords = plane.coords(points)
    off = (points - plane.origin) - coords @ plane.basis
    moved = points.diff(dim=0).norm(dim=1).sum()
    shown = coords.diff(dim=0).norm(dim=1).sum()
    in_plane = float(shown / moved) if moved > 0 else 1.0
    return Projection(coords.double().numpy(), min(in_plane, 1.0), float(off.norm(dim=1).max()) if len(off) else 0.0)


# ------------------------------------------------------------------------------ one seed's picture

@dataclass
class PathStudy:
    """Everything the figure of one seed needs, except the surface."""

    seed: int
    plane: Plane
    frame: pd.DataFrame                 # PATH_COLUMNS + kind: every projected snapshot
    points: list[dict]                  # defining points: method, seed, x, y, (loss, filled by point_losses)
    in_plane: dict[tuple[str, str], float] = field(default_factory=dict)   # (method, weights) -> fraction
    residual: dict[tuple[str, str], float] = field(default_factory=dict)
    length: dict[tuple[str, str], float] = field(default_factory=dict)     # true path length in weight space
    switch_jumps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # |θ after − θ before| per switch
    distances: dict[tuple[str, str], float] = field(default_factory=dict)  # between two methods' ends


def study_paths(recorder: PathRecorder, models: dict[tuple[str, int], nn.Module] | None, seed: int,
                plane: str = "solutions", measure: bool = True) -> PathStudy:
    """Project every recorded path of ``seed`` onto the chosen plane.

    ``models`` are the evaluated networks (``Trainer.models()``); their final states are the
    defining points.  ``None`` (a picture redrawn while training, which should not copy every
    network out of the engine on each tick): each end is the run's last recorded snapshot of the
    weights it is evaluated with, as the recording keeps it (float16, ~0.02 %); only for
    the methods of ``RECORDED_ENDS``, so ValueError for the others.  Runs whose weights are not
    finite (diverged) are left out.  ``measure=False`` (the live picture, which draws coordinates
    only) leaves ``in_plane``, ``residual`` and ``length`` empty: each costs a pass over every path.
    """
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {tuple(PLANES)}, got {plane!r}")
    runs = [r for r in recorder.runs if r[1] == seed]
    paths = {r[0]: recorder.path(r) for r in runs}
    if models is None:
        if unknown := sorted(set(paths) - set(RECORDED_ENDS)):
            raise ValueError(f"the recording alone does not hold the evaluated weights of {', '.join(unknown)}")
        ends = {m: (p.average if p.average is not None else p.live)[-1] for m, p in paths.items()}
    else:
        ends = {m: state_vector(models[(m, seed)]).cpu() for m in paths}
    ok = [m for m in paths if torch.isfinite(ends[m]).all() and torch.isfinite(paths[m].live).all()]
    if not ok:
        raise ValueError(f"every run of seed {seed} diverged: there is no path to draw")
    series = {(m, w): t for m in ok for w, t in (("live", paths[m].live), ("average", paths[m].average))
              if t is not None}
    pooled = torch.cat(list(series.values()))
    chosen = solutions_plane({m: ends[m] for m in ok}, pooled) if plane == "solutions" else pca_plane(pooled)
    columns: dict[str, list] = {c: [] for c in ("method", "step", "epoch", "weights", "xy", "kind")}
    in_plane, residual, length = {}, {}, {}
    for (m, weights), points in series.items():
        if measure:
            p = project(points, chosen)
            in_plane[(m, weights)], residual[(m, weights)] = p.in_plane, p.residual
            length[(m, weights)] = float(points.diff(dim=0).norm(dim=1).sum())
        else:
            p = Projection(chosen.coords(points).double().numpy(), math.nan, math.nan)
        for name, value in (("method", [m] * len(points)), ("weights", [weights] * len(points)),
                            ("kind", paths[m].kinds)):
            columns[name] += value
        columns["step"].append(paths[m].steps)
        columns["epoch"].append(paths[m].epochs)
        columns["xy"].append(p.coords)
    xy = np.concatenate(columns["xy"])            # one frame from plain columns: a live page does this per tick
    frame = pd.DataFrame({"method": columns["method"], "seed": seed, "step": np.concatenate(columns["step"]),
                          "epoch": np.concatenate(columns["epoch"]), "weights": columns["weights"],
                          "x": xy[:, 0], "y": xy[:, 1], "kind": columns["kind"]})
    defining = []
    for m in ok:
        x, y = chosen.coords(ends[m][None].double().float())[0].tolist()
        defining.append({"method": m, "seed": seed, "x": x, "y": y})
    jumps = np.zeros(0)
    if "sema" in ok:
        live, switches = paths["sema"].live, switch_rows(paths["sema"].kinds)
        jumps = (live[switches] - live[switches - 1]).norm(dim=1).numpy()
    distances = {(a, b): float((ends[a] - ends[b]).norm()) for a in ok for b in ok if a < b}
    return PathStudy(seed, chosen, frame, defining, in_plane, residual, length, jumps, distances)


def path_notes(study: PathStudy, points: list[dict], names: dict[str, str] | None = None) -> list[str]:
    """Plain-words observations, each computed from the measured numbers of ``study`` (markdown)."""
    names = names or {}
    name = lambda m: names.get(m, m)  # noqa: E731
    notes = []
    ranked = sorted(points, key=lambda p: p["loss"])
    if len(ranked) > 1:
        rest = ", then ".join(f"{name(p['method'])} ({p['loss']:.3g})" for p in ranked[1:])
        notes.append(f"**Lowest end.** Of the ends drawn, **{name(ranked[0]['method'])}** has the lowest training "
                     f"loss ({ranked[0]['loss']:.3g}), then {rest}.")
    methods = {p["method"] for p in points}
    if {"sgd", "ema"} <= methods:
        d = study.distances[("ema", "sgd")]
        sgd_length = study.length.get(("sgd", "live"), 0.0)
        share = (f", {100 * d / sgd_length:.2g} % of the length SGD's θ travelled ({sgd_length:.3g})"
                 if sgd_length else "")
        notes.append(f"**EMA vs SGD.** EMA's end φ lies {d:.3g} from SGD's end θ in weight space{share}.")
    if len(study.switch_jumps):
        notes.append(f"**Switches.** At each of SEMA's {len(study.switch_jumps)} switches θ jumps onto φ: "
                     f"{np.mean(study.switch_jumps):.3g} on average in weight space (largest "
                     f"{np.max(study.switch_jumps):.3g}), drawn as dashed jumps ending in ◆.")
    kept = [v for v in study.in_plane.values()]
    faithful = (f"The projected paths keep {min(kept):.0%}–{max(kept):.0%} of their true length; the rest of "
                "the motion is out of this plane, so read the picture as a shadow.")
    if study.plane.kind == "pca":
        faithful = (f"The two principal directions explain {sum(study.plane.explained):.0%} of the variance of "
                    "the pooled paths. " + faithful)
    notes.append(f"**How faithful.** {faithful}")
    return notes


# ------------------------------------------------------------------------------ the surface

@dataclass
class SurfaceGrid:
    x: np.ndarray            # (N,)
    y: np.ndarray            # (N,)
    loss: np.ndarray         # (N, N), indexed [iy, ix]
    split: str               # "train" | "test"


def grid_axes(study: PathStudy, resolution: int, reach: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A square grid (equal scales: distances in the picture are distances in weight space) over
    every projected snapshot and defining point, widened by ``reach`` × its size on each side."""
    xy = np.vstack([study.frame[["x", "y"]].to_numpy(), [[p["x"], p["y"]] for p in study.points]])
    lo, hi = xy.min(0), xy.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6) * (1 + 2 * reach)
    return (np.linspace(centre[0] - half, centre[0] + half, resolution),
            np.linspace(centre[1] - half, centre[1] + half, resolution))


def probe_subset(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """At most ``SURFACE_POINTS`` evenly spaced examples (fewer for images: a grid costs a pass per point)."""
    limit = SURFACE_POINTS["flat" if x.dim() == 2 else "images"]
    keep = torch.linspace(0, len(x) - 1, min(len(x), limit)).round().long()
    return x[keep.to(x.device)], y[keep.to(y.device)]


def _surface(model: nn.Module, x: Tensor, y: Tensor, loss_fn) -> LossSurface:
    return LossSurface(model, x, y, loss_fn)


def _plane_state(surface: LossSurface, plane: Plane) -> tuple[dict, list[dict]]:
    like = surface.state
    if sum(t.numel() for t in like.values()) != plane.origin.numel():
        raise ValueError("the network does not match the recorded paths (different number of weights)")
    device = next(iter(like.values())).device
    origin = _unflatten(plane.origin.to(device), like)
    directions = [_unflatten(b.to(device), like) for b in plane.basis]
    return origin, directions


def surface_grid(study: PathStudy, model: nn.Module, x: Tensor, y: Tensor, resolution: int = 31,
                 reach: float = 0.25, split: str = "train", loss_fn=F.cross_entropy) -> SurfaceGrid:
    """The loss of ``model``'s architecture on (x, y) at every point of a grid over the plane.

    ``model`` only supplies the architecture (and the integer buffers): every point's
    parameters and running statistics come from the plane.
    """
    xs, ys = grid_axes(study, resolution, reach)
    surface = _surface(model, x, y, loss_fn)
    origin, directions = _plane_state(surface, study.plane)
    gx, gy = np.meshgrid(xs, ys)                         # [iy, ix]
    coords = torch.tensor(np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float32)
    loss = surface.losses(coords, directions, origin).double().numpy().reshape(resolution, resolution)
    return SurfaceGrid(xs, ys, loss, split)


def point_losses(study: PathStudy, models: dict[tuple[str, int], nn.Module], x: Tensor, y: Tensor,
                 loss_fn=F.cross_entropy) -> list[dict]:
    """Each defining point with its true loss (its own network) and the surface's value at its
    projection (equal for the solutions plane, where the point lies in the plane)."""
    nets = [models[(p["method"], p["seed"])] for p in study.points]
    surface = _surface(nets[0], x, y, loss_fn)
    origin, directions = _plane_state(surface, study.plane)
    at = surface.losses(torch.tensor([[p["x"], p["y"]] for p in study.points]), directions, origin)
    return [{**p, "loss": _surface(net, x, y, loss_fn).loss(), "surface_loss": float(value)}
            for p, net, value in zip(study.points, nets, at)]


def measured_study(recorder: PathRecorder, models: dict[tuple[str, int], nn.Module], seed: int, plane: str,
                   x: torch.Tensor, y: torch.Tensor, x_train: torch.Tensor, y_train: torch.Tensor, resolution: int,
                   reach: float, split: str) -> tuple[PathStudy, list[dict], SurfaceGrid]:
    """What the paths panel measures for one seed, in one call (a task the engine can offload):
    the projected paths, the ends' true training loss and the loss surface on ``x``, ``y``."""
    study = study_paths(recorder, models, seed, plane)
    points = point_losses(study, models, x_train, y_train)
    grid = surface_grid(study, models[(points[0]["method"], seed)], x, y, resolution, reach, split)
    return study, points, grid
