import streamlit as st

st.title("Scenarios")
st.info("Scenarios is coming next.")
