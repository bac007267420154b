"""Streamlit helpers: the only part of ``sema_demo`` that imports Streamlit."""

import sys

# Every session of the Streamlit server is a thread of one process.  A thread that wants the GIL
# waits for the holder to give it up, at most the switch interval later (CPython's default 5 ms),
# and the server's event loop asks for it for every file it serves and every message it sends:
# while live pages draw, a newcomer's page load queues behind them 5 ms at a time.  1 ms keeps
# that wait short (benchmarks/load_classroom.py); a CPU-bound thread gives up the GIL more often.
SWITCH_INTERVAL = 0.001
if sys.getswitchinterval() > SWITCH_INTERVAL:
    sys.setswitchinterval(SWITCH_INTERVAL)
