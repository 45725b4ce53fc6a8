import streamlit as st

st.title("Settings")
st.info("Settings is coming next.")
