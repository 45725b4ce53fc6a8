"""Reads what ran: analytics, review, progress, exports, contact sheets."""
