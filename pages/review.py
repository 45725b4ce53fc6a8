import streamlit as st

st.title("Review")
st.info("Review is coming next.")
