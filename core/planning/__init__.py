"""Turns a request into a stored sweep: grid, model schema and catalog, prices, budgets."""
