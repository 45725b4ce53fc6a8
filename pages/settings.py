import streamlit as st

from dashboard.frame import page_setup

page_setup()
st.title("Settings")
st.info("Settings is coming next.")
