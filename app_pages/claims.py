"""Does SEMA deliver?  The paper's claims, measured with error bars and judged by stated rules."""
import streamlit as st

from sema_demo.ui.claims import COMMAND, LIVE_KEY, QUICK_COMMAND, rerun_quick, shipped_report, show_report
from sema_demo.ui.common import what_to_notice

st.title("⚖️ Does SEMA deliver?")
st.markdown(
    """
The paper claims that switching the EMA back into the model gives **faster convergence**, **better final
accuracy** than SGD and than EMA, **flatter** minima than SGD, **deeper** ones than EMA, **smoother decision
boundaries**, and all that at **no extra cost** — from at most three trials and without error bars.

Here every claim is a measurement. Each row compares SEMA with one other method **on the same seeds** (same
initial weights, same batches), takes the per-seed differences, and gives their mean with a **95 % paired t
interval**. A positive effect favours the paper. The verdict is computed from the interval by the rule written
next to it — nobody typed it in. If a claim does not show up, the table says so.
"""
)

report = shipped_report()
st.subheader("The report in the repository")
seeds = f"{len(report['seeds'])} seeds; " if report else ""
st.caption(f"Regenerate it with this command ({seeds}the line under the command says how long the shipped run took); "
           "the file `docs/claims/claims.json` is never edited by hand:")
st.code(COMMAND, language="bash")
if report is None:
    st.warning("No report found at docs/claims/claims.json (or it is damaged). Run the command above, or the "
               "quick version below.", icon="📄")
else:
    show_report(report, "shipped")

st.subheader("Re-run it now (quick version)")
st.markdown(f"The same measurements with 5 seeds, 20 epochs and fewer timing rounds (`{QUICK_COMMAND}`). It takes a few "
            "minutes and waits for a free slot when the server is busy.")
if st.button("▶ Run the quick scoreboard", key="claims_run", help="Trains SGD, EMA and SEMA on two settings, "
             "measures every claim and judges it. Your result appears below; the shipped report stays."):
    rerun_quick()
if LIVE_KEY in st.session_state:
    show_report(st.session_state[LIVE_KEY], "live")

what_to_notice("Read each row against 0 and its own margin, not against the other rows: the effects "
        "have different units (epochs, accuracy, relative change). A claim can hold in one setting and fail in the "
        "other, which is the honest answer to *when* SEMA helps. The links open the page that shows each measure.")
