"""Runs cells: claims them, creates predictions, waits, stores outputs (the worker side)."""
