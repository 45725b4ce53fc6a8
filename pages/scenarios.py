import streamlit as st

from dashboard.frame import page_setup

page_setup()
st.title("Scenarios")
st.info("Scenarios is coming next.")
