"""Heavy work (a training epoch, a simulation) waits for a slot of the server-wide job queue.

With many students on one server, a session whose job has to wait shows its place in the
queue instead of freezing everyone's page; light work (drawing a page) never waits.
Settings: ``$SEMA_MAX_JOBS`` concurrent jobs (default: cores − 1, or the Dask workers' threads + 1
with ``SEMA_ENGINE=dask``) and ``$SEMA_THREADS``
torch threads (default: the remaining cores shared out between the jobs).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st
import torch

from .. import engine
from ..jobs import JobQueue, default_slots

POSITION_EVERY = 1.0        # seconds: how often a waiting session's place in the queue is redrawn, at most


@st.cache_resource(show_spinner=False)
def job_queue() -> JobQueue:
    """The one queue of this server process (shared by every session); its slots are taken here,
    in the server, before a job is handed to the engine (``sema_demo.engine``), whatever runs it."""
    try:
        slots = engine.slots()
    except engine.EngineError:          # the engine is misconfigured: the run's own start says why
        slots = default_slots()
    configured = os.environ.get("SEMA_THREADS", "")
    threads = int(configured) if configured.isdigit() and int(configured) >= 1 else \
        max(1, ((os.cpu_count() or 2) - 1) // slots)
    torch.set_num_threads(threads)  # process-wide: bounds what each concurrent job can take
    return JobQueue(slots)


def _yield_to_streamlit() -> None:
    """Let Streamlit interrupt a session that waits in the queue.

    Reading session state is one of Streamlit's yield points: if the user pressed a button
    (a rerun is pending) or closed the tab (a stop is pending), Streamlit raises here, the
    wait ends and the place in the queue goes to the next student instead of a run nobody
    watches.  A fragment's own timer ticks never interrupt (Streamlit queues them).
    """
    _ = "_" in st.session_state


class Cancelled(Exception):
    """A waiting job that ``cancelled()`` says nobody wants any more gave its place up."""


@contextmanager
def heavy_job(what: str = "training", cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    """Run the block once a job slot is free; meanwhile show the place in the queue.

    ``cancelled()`` is asked while it waits: when it says True (the run was paused or replaced
    by a rerun in another thread, see ``ui.training``) the wait ends with :class:`Cancelled`.
    """
    notice = st.empty()

    def check() -> None:
        _yield_to_streamlit()
        if cancelled is not None and cancelled():
            raise Cancelled(what)

    def on_wait(position: int) -> None:
        notice.info(f"⏳ The server is busy with other students' {what}: you are number {position} "
                    "in the queue. Your run starts by itself.")

    # The place is redrawn at most once a second: every student who leaves the queue moves
    # everyone behind, and a class of 40 redrawing on each move sent the server's event loop
    # hundreds of messages a second.
    with job_queue().slot(on_wait=on_wait, check=check, min_interval=POSITION_EVERY):
        notice.empty()
        yield


def offloaded(what: str, fn, *args, progress=None, **kwargs):
    """``fn(*args, **kwargs)`` in a slot of the queue, run where heavy work runs (``engine.offload``:
    here, or on a Dask worker in the classroom mode); a lost worker or an unusable engine is a
    message on the page, never a traceback."""
    with heavy_job(what):
        try:
            return engine.offload(fn, *args, progress=progress, **kwargs)
        except engine.WorkerLost as err:
            st.error(f"The worker process computing these {what} stopped ({err}). Change a control or reload "
                     "the page to compute them again.", icon="🔌")
        except engine.EngineError as err:
            st.error(f"The computing engine is not available: {err}", icon="🚫")
    st.stop()
