"""Scenarios: versions, status rules, promotion and the production export."""
