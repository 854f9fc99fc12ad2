"""Scarce slots: building the problem from the database, running the solver, proposals and their review."""
