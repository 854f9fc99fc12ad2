"""Scarce slots: the problem built from the database, the solver run, proposals and
their validation (``run``), the read models of the allocation pages (``review``).
"""
