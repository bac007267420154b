"""The scoreboard page's parts: the shipped report, its table, and a live quick re-run."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ..charts.claims import effects_chart
from ..claims import COMMAND, QUICK_COMMAND, load_report, run_claims
from .jobs import offloaded

REPORT_PATH = Path(__file__).resolve().parents[2] / "docs" / "claims" / "claims.json"
PAGE_TITLES = {"toy": "Decision boundaries", "landscape": "Flatness vs sharpness", "images": "Image classification",
               "theory": "Theory"}
VERDICT_ICONS = {"supported": "✅ supported", "not supported": "❌ not supported", "inconclusive": "❔ inconclusive"}
LIVE_KEY = "claims_live_report"


def shipped_report() -> dict | None:
    """The report committed to the repository (None if it is missing or damaged)."""
    return load_report(REPORT_PATH)


def report_table(report: dict) -> pd.DataFrame:
    """One row per claim row, in words a student reads: verdict, effect [CI], seeds, the page."""
    rows = []
    for c in report["claims"]:
        low, high = c["ci"]
        rows.append({"id": c["id"], "Claim": c["claim"], "Verdict": VERDICT_ICONS.get(c["verdict"], c["verdict"]),
                     "Effect [95 % CI]": f"{c['effect']:+.3g} [{low:+.3g}, {high:+.3g}]", "Seeds": c["seeds"],
                     "Measure": c["measure"], "Page": f"/{c['page']}"})
    return pd.DataFrame(rows)


def verdict_counts(report: dict) -> str:
    """'5 supported, 9 not supported, 5 inconclusive (19 rows)'."""
    verdicts = [c["verdict"] for c in report["claims"]]
    return ", ".join(f"{verdicts.count(v)} {v}" for v in ("supported", "not supported", "inconclusive")) + \
        f" ({len(verdicts)} rows)"


def show_report(report: dict, key: str) -> None:
    """The forest plot, the table (with links to the pages) and the settings of one report."""
    st.markdown(f"**{verdict_counts(report)}** · seeds {report.get('seeds')} · {report['wall_s']:.0f} s · "
                f"torch {report['versions'].get('torch')} · {report['versions'].get('machine', '')}")
    st.altair_chart(effects_chart(report), width="stretch", key=f"{key}_chart")
    table = report_table(report)
    st.dataframe(table, hide_index=True, width="stretch", key=f"{key}_table", height=35 * (len(table) + 1) + 3,
                 column_config={"Page": st.column_config.LinkColumn("Page", display_text=r"/(\w+)"),
                                "Measure": st.column_config.TextColumn("Measure", width="large")})
    with st.expander("Settings and rules", expanded=False):
        for name, setting in report.get("settings", {}).items():
            title = next((c["setting"] for c in report["claims"] if c["id"].endswith(f"-{name}")), name)
            st.markdown(f"- **{name}**: {title}")
        for rule in dict.fromkeys(c["rule"] for c in report["claims"]):
            st.markdown(f"- *Rule*: {rule}")


def rerun_quick() -> None:
    """Run the quick scoreboard now, with a progress bar, under the job queue; keep it for this session."""
    bar = st.progress(0.0, text="waiting for a slot …")
    report = offloaded("measurements", run_claims, quick=True,
                       progress=lambda fraction, text: bar.progress(min(fraction, 1.0), text=text))
    bar.empty()
    st.session_state[LIVE_KEY] = report


__all__ = ["COMMAND", "QUICK_COMMAND", "LIVE_KEY", "PAGE_TITLES", "REPORT_PATH", "report_table", "rerun_quick",
           "shipped_report", "show_report", "verdict_counts"]
