"""Streamlit-side building blocks: cached resources, widgets, formatting. Pages import these;
these import core; core never imports Streamlit."""
