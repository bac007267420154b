"""SEMA Lab — `streamlit run app.py`. The page list and the shared frame; nothing else."""
import streamlit as st

st.set_page_config(page_title="SEMA Lab — Switch EMA", page_icon="🔀", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/playground.py", title="Optimizer playground", icon="🎯", url_path="playground"),
    st.Page("pages/toy_datasets.py", title="Decision boundaries", icon="🌗", url_path="toy"),
    st.Page("pages/images.py", title="Image classification", icon="🖼️", url_path="images"),
    st.Page("pages/landscape.py", title="Flatness vs sharpness", icon="⛰️", url_path="landscape"),
    st.Page("pages/theory.py", title="Theory: noisy quadratic", icon="📐", url_path="theory"),
]

st.navigation(PAGES).run()
