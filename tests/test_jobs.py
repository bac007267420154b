"""The classroom job queue: bounded concurrency, first-come first-served, visible positions."""
import threading
import time

import pytest

from sema_demo.jobs import JobQueue, default_slots


def test_never_more_than_slots_jobs_run_at_once_and_everyone_finishes():
    queue = JobQueue(slots=2)
    peak, running, lock, done = [0], [0], threading.Lock(), []

    def job(i):
        with queue.slot():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1
            done.append(i)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(done) == list(range(8))
    assert peak[0] == 2
    assert queue.running == 0 and queue.waiting == 0


def test_waiters_are_served_in_arrival_order_and_see_their_position():
    queue = JobQueue(slots=1)
    order, positions = [], {}
    release = threading.Event()

    def holder():
        with queue.slot():
            release.wait(5)

    def waiter(i):
        with queue.slot(on_wait=lambda p: positions.setdefault(i, []).append(p), poll=0.01):
            order.append(i)

    first = threading.Thread(target=holder)
    first.start()
    while queue.running == 0:
        time.sleep(0.005)
    waiters = []
    for i in range(3):
        waiters.append(threading.Thread(target=waiter, args=(i,)))
        waiters[-1].start()
        while queue.waiting < i + 1:
            time.sleep(0.005)
    release.set()
    for t in [first, *waiters]:
        t.join(5)
    assert order == [0, 1, 2]
    assert positions[0][0] == 1 and positions[2][0] == 3
    assert positions[2] == sorted(positions[2], reverse=True)   # the place only improves


def test_an_exception_inside_the_slot_releases_it():
    queue = JobQueue(slots=1)
    with pytest.raises(RuntimeError):
        with queue.slot():
            raise RuntimeError("boom")
    assert queue.running == 0
    with queue.slot():
        assert queue.running == 1


def test_slot_count_comes_from_the_environment_or_the_cores(monkeypatch):
    monkeypatch.setenv("SEMA_MAX_JOBS", "3")
    assert default_slots() == 3
    monkeypatch.setenv("SEMA_MAX_JOBS", "zero")
    assert default_slots() >= 1
    with pytest.raises(ValueError):
        JobQueue(0)


def test_a_wait_that_check_interrupts_gives_its_place_up():
    queue = JobQueue(slots=1)
    release, interrupted, served = threading.Event(), threading.Event(), []

    class Paused(Exception):
        pass

    def holder():
        with queue.slot():
            release.wait(5)

    def check():
        if interrupted.is_set():
            raise Paused

    def impatient():
        with pytest.raises(Paused):
            with queue.slot(check=check, poll=0.01):
                served.append("impatient")          # never: it left the queue first

    def patient():
        with queue.slot(poll=0.01):
            served.append("patient")

    first = threading.Thread(target=holder)
    first.start()
    while queue.running == 0:
        time.sleep(0.005)
    threads = [threading.Thread(target=impatient), threading.Thread(target=patient)]
    for i, t in enumerate(threads):
        t.start()
        while queue.waiting < i + 1:
            time.sleep(0.005)
    interrupted.set()                                # e.g. the user pressed Pause, or closed the tab
    threads[0].join(5)
    assert queue.waiting == 1                        # only the patient one still waits …
    release.set()
    for t in (first, threads[1]):
        t.join(5)
    assert served == ["patient"]                     # … and it got the slot
    assert queue.running == 0 and queue.waiting == 0


def test_reading_session_state_is_a_point_where_streamlit_can_interrupt_a_waiting_session():
    """``heavy_job`` relies on it to let a pending rerun or stop end a wait in the queue."""
    from streamlit.runtime.state import SafeSessionState, SessionState

    class Stop(Exception):
        pass

    def pending_stop():
        raise Stop

    state = SafeSessionState(SessionState(), yield_callback=pending_stop)
    with pytest.raises(Stop):
        _ = "anything" in state


def test_a_nested_slot_runs_in_the_outer_one_instead_of_waiting_for_itself():
    queue = JobQueue(slots=1)
    finished = threading.Event()

    def nested():
        with queue.slot():
            with queue.slot():              # e.g. a cached computation that takes a slot itself
                assert queue.running == 1
            assert queue.running == 1       # the inner block does not release the outer slot
        finished.set()

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    assert finished.wait(5), "a nested slot deadlocked"
    assert queue.running == 0


def test_the_server_hands_the_gil_over_every_millisecond():
    """Importing the Streamlit layer shortens CPython's switch interval (5 ms by default): the server's
    event loop then waits at most 1 ms behind a drawing session for each file and message."""
    import sys

    import sema_demo.ui as ui

    assert ui.SWITCH_INTERVAL == 0.001
    assert sys.getswitchinterval() <= ui.SWITCH_INTERVAL


def test_a_waiters_place_is_shown_at_most_once_per_min_interval_and_the_latest_place_comes_through():
    """Every departure moves everyone behind; a page redraws the place at most once per interval,
    and a move made during the interval is shown at the first look after it."""
    queue = JobQueue(slots=1)
    shown, releases = [], [threading.Event() for _ in range(3)]

    def holder(k):
        with queue.slot():
            releases[k].wait(5)

    holders = []
    for k in range(3):                            # one running, two waiting ahead of the watcher
        holders.append(threading.Thread(target=holder, args=(k,)))
        holders[-1].start()
        while queue.running + queue.waiting < k + 1:
            time.sleep(0.005)

    def watcher():
        with queue.slot(on_wait=lambda p: shown.append((time.monotonic(), p)), poll=0.01, min_interval=0.5):
            pass

    watching = threading.Thread(target=watcher)
    watching.start()
    while queue.waiting < 3:
        time.sleep(0.005)
    releases[0].set()                             # the watcher moves from 3 to 2 at once: not shown yet
    holders[0].join(5)
    time.sleep(0.1)
    assert [p for _, p in shown] == [3]
    time.sleep(0.6)                               # after the interval the latest place comes through
    assert [p for _, p in shown] == [3, 2]
    releases[1].set()
    releases[2].set()
    for t in (*holders, watching):
        t.join(5)
    assert shown[1][0] - shown[0][0] >= 0.5
    assert all(b[0] - a[0] >= 0.5 for a, b in zip(shown, shown[1:]))
