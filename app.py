"""SEMA Lab — `streamlit run app.py`. The page list and the shared frame; nothing else."""
import streamlit as st

from sema_demo.ui.display import frame_controls

st.set_page_config(page_title="SEMA Lab — Switch EMA", page_icon="🔀", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("app_pages/playground.py", title="Optimizer playground", icon="🎯", url_path="playground"),
    st.Page("app_pages/toy_datasets.py", title="Decision boundaries", icon="🌗", url_path="toy"),
    st.Page("app_pages/images.py", title="Image classification", icon="🖼️", url_path="images"),
    st.Page("app_pages/landscape.py", title="Flatness vs sharpness", icon="⛰️", url_path="landscape"),
    st.Page("app_pages/theory.py", title="Theory: noisy quadratic", icon="📐", url_path="theory"),
    st.Page("app_pages/claims.py", title="Does SEMA deliver?", icon="⚖️", url_path="claims"),
]

page = st.navigation(PAGES)
frame_controls()                      # projector mode and the live speed, shared by every page
page.run()
