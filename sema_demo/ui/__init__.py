"""Streamlit helpers: the only part of ``sema_demo`` that imports Streamlit."""
