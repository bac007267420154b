import streamlit as st

st.title("Under construction")
st.write("This page is being built; see the open issues.")
