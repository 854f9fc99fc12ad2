"""Persistence: the database handle and unit of work, the models and migrations, settings,
and every SQLite/PostgreSQL difference (``dialect``).
"""
