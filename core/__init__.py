"""Scenario Tuner core: everything that is not Streamlit.

Nothing in this package may import streamlit; the worker and the CLI import it alone.
"""
