import streamlit as st

st.title("Overview")
st.info("Overview is coming next.")
