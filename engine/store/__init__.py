"""Persistence: the database handle and unit of work, the models, migrations, settings and SQL dialect differences."""
