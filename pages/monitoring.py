import streamlit as st

st.title("Monitoring")
st.info("Monitoring is coming next.")
